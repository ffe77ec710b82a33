"""Which labels the estimate's audit interval counts as samples of the data (issue 27): the audits, and every
pick a uniform draw placed (a random strategy, a random cold start), read from the servings' selection
probability, never from a strategy's name; a margin pick never."""
from __future__ import annotations

import pytest

from assay import store
from assay.learning.evaluate import uniform_draws

pytestmark = pytest.mark.slow

WORDS = ["free prize call now", "see you at lunch", "win cash today", "meeting moved to noon"]


def _label(client, pid, n):
    done = 0
    while done < n:
        items = client.get(f"/api/projects/{pid}/queue?n=5").json
        assert items
        for item in items[: n - done]:
            label = "spam" if item["data"]["text"].startswith(("free", "win")) else "ham"
            assert client.post(f"/api/projects/{pid}/annotations",
                               json={"item_id": item["id"], "label": label}).status_code == 201
            done += 1


@pytest.mark.parametrize("strategy", ["random", "margin"])
def test_uniform_draws_are_the_audits_and_the_uniform_picks(app, client, make_project, strategy):
    pid = make_project(f"draws {strategy}", strategy=strategy, batch_size=10, retrain_every=10,
                       featurizer="tfidf", audit_share=0.2)
    client.post(f"/api/projects/{pid}/items", json=[{"text": f"{WORDS[i % 4]} {i}"} for i in range(300)])
    service = app.extensions["assay.retrain"]
    for _ in range(6):
        _label(client, pid, 10)
        assert service.wait_idle(120)
    conn = app.extensions["assay.db"].reader
    labeled = [r[0] for r in conn.execute("SELECT id FROM items WHERE project_id = ? AND n_labels > 0", (pid,))]
    firsts = {i: s[0] for i, s in store.item_servings(conn, pid, labeled).items()}
    uniform = uniform_draws(conn, pid, labeled)
    marks = {i: f["strategy"] for i, f in firsts.items()}
    if strategy == "random":
        assert uniform == set(labeled)
    else:
        picks = {i for i, m in marks.items() if m.startswith("margin")}
        assert picks and not picks & uniform  # top-k picks are certain, not draws
        # The audits, the random cold start and the random fill while the queue was dry: uniform draws all.
        assert {i for i, m in marks.items() if m in ("audit", "random (cold start)", "random")} == uniform
    # The interval counts them: through the stats, the audits' own range exists and the estimate's holds it.
    est = client.get(f"/api/projects/{pid}/stats").json["quality"]["estimate"]
    assert est["audit_low"] is not None and est["low"] <= est["audit_low"] <= est["audit_high"] <= est["high"]

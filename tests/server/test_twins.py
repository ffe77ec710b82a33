"""Exact duplicates are never ranked side by side: a queue holds one copy of each item's data."""
from __future__ import annotations

import time

from assay import store
from assay.learning.job import without_twins
from tests import sql
from tests.data import load_sms


def test_the_queue_keeps_the_first_of_each_set_of_twins():
    queue = [{"item_id": i} for i in (1, 2, 3, 4)]
    data = {1: {"text": "Free ringtone"}, 2: {"text": "hi"}, 3: {"text": "Free ringtone"},
            4: {"text": "free ringtone"}}
    assert [r["item_id"] for r in without_twins(queue, data)] == [1, 2, 4]


def test_a_retrained_queue_never_holds_two_copies_of_one_text(app, client, make_project):
    """SMS messages with a few texts three times over (as the collection has: "Free Top ringtone" and the
    like): margin scores copies alike, and without care ranks them side by side."""
    rows = load_sms(300)
    texts = [r["text"] for r in rows] + [r["text"] for r in rows[:30]] * 2
    truth = {r["text"]: r["label"] for r in rows}
    pid = make_project("twins", strategy="margin", featurizer="tfidf", retrain_every=10, batch_size=10)
    client.post(f"/api/projects/{pid}/items", json=[{"text": t} for t in texts])
    for item in client.get(f"/api/projects/{pid}/queue?n=12").json:
        label = truth[item["data"]["text"]]
        client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": label})
    db = app.extensions["assay.db"]
    deadline = time.monotonic() + 120
    while not any(v["status"] == "ok" for v in store.model_versions(db, pid)):
        assert time.monotonic() < deadline, store.model_versions(db, pid)
        time.sleep(0.2)
    assert app.extensions["assay.retrain"].wait_idle(120)
    queued = [r["item_id"] for r in sql.queue_rows(db, pid)]
    data = store.item_data(db, queued)
    queued_texts = [data[i]["text"] for i in queued]
    assert len(queued) > 100 and len(set(queued_texts)) == len(queued_texts)
    # The twins stay in the pool: one copy is queued, the others wait for a later ranking.
    pool = store.pool_item_ids(db, pid)
    assert len(pool) > len(queued)

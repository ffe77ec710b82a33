"""Issue 28 in the server: before any label, a text project's queue carries the label names' suggestions, and an
answer records whether a suggestion was shown and taken (stored, exported with provenance)."""
from __future__ import annotations

import csv
import json

import pytest

from assay import close_app, create_app
from assay.features import text

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not text.embeddings_available(), reason="needs the MiniLM package")]

AG_NEWS = "/work/shared/data/ag_news/test.csv"
TOPICS = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}


def _news(n_per_class: int = 15) -> list[dict]:
    rows, seen = [], {}
    with open(AG_NEWS, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if seen.get(row["label"], 0) < n_per_class:
                seen[row["label"]] = seen.get(row["label"], 0) + 1
                rows.append({"text": f"{row['title']} {row['description']}", "topic": row["label"]})
    return rows


@pytest.fixture()
def app(tmp_path):
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "SEED": 0,
                      "EMBEDDING_CACHE": str(tmp_path / "emb")})
    yield app
    close_app(app)


def test_before_any_label_the_queue_carries_suggestions_from_the_label_names(app):
    client = app.test_client()
    service = app.extensions["assay.retrain"]
    rows = _news()
    # Numbered labels say nothing: their one-line descriptions do (a project setting).
    r = client.post("/api/projects", json={"name": "news", "labels": list(TOPICS), "label_descriptions": TOPICS})
    assert r.status_code == 201, r.json
    pid = r.json["id"]
    assert client.get(f"/api/projects/{pid}").json["label_descriptions"] == TOPICS
    truth = {row["text"]: row["topic"] for row in rows}
    client.post(f"/api/projects/{pid}/items", json=[{"text": row["text"]} for row in rows])
    assert service.wait_idle(300)
    assert client.get(f"/api/projects/{pid}/stats").json["labeled"] == 0
    items = client.get(f"/api/projects/{pid}/queue?n=40").json
    assert len(items) == 40
    for item in items:
        p = item["prediction"]
        assert p is not None and p["label"] in TOPICS and 0 < p["confidence"] <= 1
        assert [label for label, _ in p["top"]][0] == p["label"] and len(p["top"]) == 4
        if "probs" in p:  # the batch's rows carry the table; the rows ranked beyond it only the top guesses
            assert abs(sum(p["probs"].values()) - 1) < 1e-3
    right = sum(item["prediction"]["label"] == truth[item["data"]["text"]] for item in items)
    assert right >= 20, right  # chance is 10 of 40; the names alone get about 25 (0.64 on AG News)

    # Taking the suggestion records it; answering otherwise records the suggestion that was shown.
    first, second = items[0], items[1]
    guess = first["prediction"]["label"]
    r = client.post(f"/api/projects/{pid}/annotations",
                    json={"item_id": first["id"], "label": guess, "suggested": guess, "accepted": True})
    assert r.status_code == 201, r.json
    other = next(label for label in TOPICS if label != second["prediction"]["label"])
    r = client.post(f"/api/projects/{pid}/annotations", json={
        "item_id": second["id"], "label": other, "suggested": second["prediction"]["label"], "accepted": False})
    assert r.status_code == 201, r.json
    bad = client.post(f"/api/projects/{pid}/annotations", json={
        "item_id": items[2]["id"], "label": other, "suggested": items[2]["prediction"]["label"] if
        items[2]["prediction"]["label"] != other else next(x for x in TOPICS if x != other), "accepted": True})
    assert bad.status_code == 400
    exported = [json.loads(line) for line in client.get(
        f"/api/projects/{pid}/export?format=jsonl&provenance=1").get_data(as_text=True).splitlines()]
    by_item = {row["item_id"]: row for row in exported}
    assert by_item[first["id"]]["suggested"] == guess and by_item[first["id"]]["accepted"] is True
    assert by_item[second["id"]]["accepted"] is False
    assert by_item[second["id"]]["answers"][0]["suggested"] == second["prediction"]["label"]
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["suggestions"] == {"shown": 2, "accepted": 1, "acceptance_rate": 0.5}


def test_descriptions_must_name_labels(app):
    client = app.test_client()
    r = client.post("/api/projects", json={"name": "x", "labels": ["a", "b"], "label_descriptions": {"c": "no"}})
    assert r.status_code == 400

"""Exact duplicates on the labeling page in a real Chromium (issue 29.5): the SMS demo's repeated texts, which a
margin ranking puts side by side, are never served back to back, and the label given to one goes to its twins."""
from __future__ import annotations

import csv
import json
import os
from collections import defaultdict

from browser_helpers import wait_for, wait_for_item

from assay.store import content_hash

SMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "server", "demo", "sms_spam.tsv")


def _demo_rows(n: int) -> list[tuple[str, str]]:
    """The first n rows of the demo's file as shipped, repeats included: (label, text)."""
    with open(SMS_FILE, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(label, text) for _, (label, text) in zip(range(n), reader)]


def test_twins_are_not_served_back_to_back_and_share_the_label(page, live_server, screenshot):
    api, app = live_server.api, live_server.app
    rows = _demo_rows(1000)
    copies = defaultdict(list)
    for i, (_, text) in enumerate(rows):
        copies[text].append(i)
    assert sum(len(v) - 1 for v in copies.values()) == 22  # the demo's first 1000 messages repeat 22 times
    # A model from the start (seed labels on texts that do not repeat), a margin ranking, and no retrain while
    # the test labels: the queue stays as ranked.
    pid = api.post("/api/projects", {"name": "sms-demo-twins", "labels": ["ham", "spam"], "strategy": "margin",
                                     "retrain_every": 1000})["id"]
    seeds = [i for i, (_, text) in enumerate(rows) if len(copies[text]) == 1][:40]
    items = [{"id": f"d{i}", "text": text, **({"label": label} if i in seeds else {})}
             for i, (label, text) in enumerate(rows)]
    assert api.post(f"/api/projects/{pid}/items?label_column=label", items) == {"imported": 1000, "skipped": 0}
    assert app.extensions["assay.retrain"].wait_idle(180)
    db = app.extensions["assay.db"]
    queue = db.reader.execute(
        "SELECT q.item_id, i.data FROM queue q JOIN items i ON i.id = q.item_id WHERE q.project_id = ?"
        " ORDER BY q.rank", (pid,)).fetchall()
    texts = [json.loads(data)["text"] for _, data in queue]
    # Where the ranking holds a repeated text twice or more, its copies sit side by side (the same text scores
    # the same): the first such text, by rank.
    first = next(r for r, t in enumerate(texts) if texts.count(t) > 1)
    twin_text = texts[first]
    ranks = [r for r, t in enumerate(texts) if t == twin_text]
    assert ranks[1] - ranks[0] <= 2, ranks  # back to back in the ranking (an audit pick may sit between)
    # What ranks before it is labeled through the API; the page then starts just before the twins.
    truth = {text: label for label, text in rows}
    start = max(0, first - 2)
    for item_id, data in queue[:start]:
        api.post(f"/api/projects/{pid}/annotations", {"item_id": item_id, "label": truth[json.loads(data)["text"]]})

    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    shown = [wait_for_item(page)]
    for _ in range(8):
        page.keyboard.press("1" if truth[shown[-1]["text"]] == "ham" else "2")
        shown.append(wait_for_item(page, not_id=shown[-1]["id"]))
    seen = [s["text"] for s in shown]
    assert len(seen) == len(set(seen)), seen  # no text twice, let alone back to back
    assert twin_text in seen[:-1], (first, seen)  # the page reached the twins, and labeled one of them
    labeled = int(shown[seen.index(twin_text)]["id"])

    # Its label went to its twins, and the export says where it came from.
    twin_ids = {r[0] for r in db.reader.execute(
        "SELECT id FROM items WHERE project_id = ? AND content_hash = ?", (pid, content_hash({"text": twin_text})))}
    assert labeled in twin_ids and len(twin_ids) == len(copies[twin_text])

    def exported():
        text = api.get(f"/api/projects/{pid}/export?format=jsonl&provenance=1")
        return {r["item_id"]: r for r in map(json.loads, text.splitlines()) if r["item_id"] in twin_ids}

    rows_out = wait_for(lambda: (e := exported()) and len(e) == len(twin_ids) and e, what="the twins' labels")
    assert {r["label"] for r in rows_out.values()} == {truth[twin_text]}
    for item_id, row in rows_out.items():
        source = row["answers"][0]["source"]
        assert source == ("annotator" if item_id == labeled else f"twin of item {labeled}"), row
    screenshot(page, "annotate-twins.png")
    assert page.js_errors == []

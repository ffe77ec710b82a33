"""Items the labeling page already holds show the newest model's prediction once a new version lands."""
from __future__ import annotations

import re

from browser_helpers import wait_for, wait_for_item


def test_held_items_show_the_new_models_prediction(page, live_server, sms_project, sms_data):
    api, pid = live_server.api, sms_project.id
    assert live_server.app.extensions["assay.retrain"].wait_idle(120)  # the cold-start queue: no model yet
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    shown = wait_for_item(page)
    # No model yet, but the label names' guess (issue 28); the page then swaps in the first model's.
    assert api.get(f"/api/projects/{pid}/stats")["model_version"] is None

    # Someone else's labels (here through the API) bring the first model while this page holds its items.
    label_of = dict((text, label) for label, text in sms_data(40))
    items = live_server.app.extensions["assay.db"].reader.execute(
        "SELECT id, json_extract(data, '$.text') FROM items WHERE project_id = ?", (pid,)).fetchall()
    spam = [i for i, text in items if label_of[text] == "spam" and str(i) != shown["id"]][:5]
    ham = [i for i, text in items if label_of[text] == "ham" and str(i) != shown["id"]][:5]
    for item_id in spam + ham:
        api.post(f"/api/projects/{pid}/annotations", {"item_id": item_id, "label": "spam" if item_id in spam else "ham"})
    version = wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["model_version"], timeout=60,
                       what="the first model")

    # The names' guess was there from the start: wait for the first model's own.
    page.wait_for_function("(v) => document.getElementById('picked').textContent.includes(`model v${v}`)",
                           arg=version, timeout=20_000)
    assert re.match(r"^Model: (ham|spam) \d+% sure$", page.text_content("#prediction"))
    assert page.evaluate("document.getElementById('item').dataset.itemId") == shown["id"]  # the same item
    assert f"model v{version}" in page.text_content("#picked")
    assert not page.js_errors

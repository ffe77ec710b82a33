"""Issue 28 on the labeling page: before any label the item shows the label names' guess, one key (Enter, on a
project with a key per label) takes it, and the answer records that it was the suggestion."""
from __future__ import annotations

import re

from browser_helpers import wait_for, wait_for_item


def test_enter_accepts_the_suggestion_and_the_answer_says_so(page, live_server, sms_project):
    api, pid = live_server.api, sms_project.id
    assert live_server.app.extensions["assay.retrain"].wait_idle(120)  # the cold start, with the names' guesses
    assert api.get(f"/api/projects/{pid}/stats")["labeled"] == 0
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    shown = wait_for_item(page)
    page.wait_for_function(
        "() => /^Model: (ham|spam) \\d+% sure$/.test(document.getElementById('prediction').textContent)")
    guess = re.match(r"^Model: (ham|spam)", page.text_content("#prediction")).group(1)
    assert page.is_visible("#accept-hint") and "Enter" in page.text_content("#accept-hint")

    page.keyboard.press("Enter")
    wait_for_item(page, not_id=shown["id"])
    reader = live_server.app.extensions["assay.db"].reader
    row = wait_for(lambda: reader.execute(
        "SELECT label, suggested, accepted FROM annotations WHERE item_id = ? AND undone_at IS NULL",
        (int(shown["id"]),)).fetchone(), timeout=15, what="the answer")
    assert tuple(row) == (f'"{guess}"', guess, 1)

    # A label picked by its own key, other than the guess, records the guess it passed over.
    second = wait_for_item(page, not_id=shown["id"])
    page.wait_for_function(
        "() => /^Model: (ham|spam) \\d+% sure$/.test(document.getElementById('prediction').textContent)")
    guess2 = re.match(r"^Model: (ham|spam)", page.text_content("#prediction")).group(1)
    other = "spam" if guess2 == "ham" else "ham"
    page.keyboard.press("1" if other == "ham" else "2")  # keys 1-2 pick the labels in the project's order
    row = wait_for(lambda: reader.execute(
        "SELECT label, suggested, accepted FROM annotations WHERE item_id = ? AND undone_at IS NULL",
        (int(second["id"]),)).fetchone(), timeout=15, what="the second answer")
    assert tuple(row) == (f'"{other}"', guess2, 0)
    stats = wait_for(lambda: (s := api.get(f"/api/projects/{pid}/stats"))["suggestions"]["shown"] == 2 and s,
                     what="both answers counted")
    assert stats["suggestions"] == {"shown": 2, "accepted": 1, "acceptance_rate": 0.5}
    assert not page.js_errors

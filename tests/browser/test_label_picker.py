"""The annotate page with 150 labels (CLINC150's intents), keyboard only: the model's guesses on keys 1-5,
recently used labels after them, a type-ahead search over the labels, and the time from a key to the
next item."""
from __future__ import annotations

import csv
import io
import os
import statistics
from collections import defaultdict
from itertools import count

import pytest
from browser_helpers import export_rows, wait_for, wait_for_item

CLINC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets", "clinc150_600.csv")
_names = count(1)

SHOWN = "() => [...document.querySelectorAll('#labels .label-button:not([hidden])')].map((b) => b.dataset.label)"
HIGHLIGHT = "() => { const b = document.querySelector('#labels .label-button.highlight'); return b && b.dataset.label; }"
SUGGESTIONS = """() => [...document.querySelectorAll('#suggestions .suggestion')].map((b) => ({
  key: b.dataset.key, label: b.dataset.label, recent: b.classList.contains('recent'),
  prob: b.querySelector('.prob') ? b.querySelector('.prob').textContent : null}))"""
# Time from a key's keydown to the next item in the page, style and layout included (the observer forces
# them): what the annotator waits, less the wait for the screen's next frame.
TIMER = """() => {
  window.__lat = [];
  let t0 = null;
  window.addEventListener('keydown', (e) => { if (e.key === '1' || e.key === 'Enter') t0 = e.timeStamp; }, true);
  new MutationObserver(() => {
    if (t0 === null) return;
    void document.body.offsetHeight;
    window.__lat.push(performance.now() - t0);
    t0 = null;
  }).observe(document.getElementById('item'), {attributes: true, attributeFilter: ['data-item-id']});
}"""


def clinc_rows() -> list[dict]:
    with open(CLINC, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def clinc(live_server):
    """150 intents with 3 labeled utterances each (a seed set through the import) and a model trained on
    them; the fourth utterance of each intent is left to label."""
    api = live_server.api
    rows = clinc_rows()
    intents = sorted({row["intent"] for row in rows})
    nth = defaultdict(int)
    seed, pool = [], []
    for row in rows:
        (seed if nth[row["intent"]] < 3 else pool).append(row)
        nth[row["intent"]] += 1
    pid = api.post("/api/projects", {"name": f"clinc-{next(_names)}", "labels": intents, "strategy": "margin",
                                     "featurizer": "tfidf"})["id"]
    assert api.post(f"/api/projects/{pid}/items", [{"text": row["text"]} for row in pool])["imported"] == 150
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "intent"])
    writer.writerows([row["text"], row["intent"]] for row in seed)
    assert api.post(f"/api/projects/{pid}/items?text_column=text&label_column=intent", data=out.getvalue().encode(),
                    content_type="text/csv")["imported"] == 450
    wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["model_version"], timeout=120, what="the first model")
    assert live_server.app.extensions["assay.retrain"].wait_idle(120)
    return pid, intents


def _labels_of(api, pid, ids) -> dict:
    rows = {row["item_id"]: row.get("labels", row.get("label")) for row in export_rows(api, pid)}
    return {i: rows.get(i) for i in ids}


def test_150_intents_labeled_by_keyboard_through_suggestions_and_search(page, live_server, clinc, screenshot):
    api, (pid, intents) = live_server.api, clinc
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    item = wait_for_item(page)
    assert page.locator("#labels kbd").count() == 0  # no label has a fixed key
    expected = {}  # item id -> the label the keys should have stored

    # Keys 1-5 are the model's top guesses for this item, with their probabilities, as the API serves them;
    # the buttons follow the same ranking.
    top = api.get(f"/api/projects/{pid}/predictions?ids={item['id']}")["items"][item["id"]]["prediction"]["top"]
    assert len(top) == 5 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    slots = page.evaluate(SUGGESTIONS)
    assert [(s["key"], s["label"], s["prob"]) for s in slots[:5]] == [
        (str(i + 1), label, f"{round(100 * p)}%") for i, (label, p) in enumerate(top)]
    shown = page.evaluate(SHOWN)
    assert len(shown) == 150 and shown[:5] == [label for label, _ in top]
    assert shown[5:] == [label for label in intents if label not in shown[:5]]
    assert page.evaluate("document.activeElement.id") == "picker-input"
    screenshot(page, "annotate-150-labels.png")
    page.keyboard.press("1")
    expected[int(item["id"])] = top[0][0]
    item = wait_for_item(page, not_id=item["id"])

    # Typing narrows the labels; separators and case do not count; Enter picks the highlighted one.
    page.keyboard.type("Book Fl")
    assert page.evaluate(SHOWN) == ["book_flight"] and page.evaluate(HIGHLIGHT) == "book_flight"
    page.keyboard.press("Enter")
    expected[int(item["id"])] = "book_flight"
    item = wait_for_item(page, not_id=item["id"])
    assert page.input_value("#picker-input") == ""

    # A name that starts with the query comes before one with a word that does; arrows move and wrap.
    page.keyboard.type("flight")
    assert page.evaluate(SHOWN) == ["flight_status", "book_flight"] and page.evaluate(HIGHLIGHT) == "flight_status"
    page.keyboard.press("ArrowDown")
    assert page.evaluate(HIGHLIGHT) == "book_flight"
    page.keyboard.press("ArrowDown")
    assert page.evaluate(HIGHLIGHT) == "flight_status"
    page.keyboard.press("ArrowUp")
    assert page.evaluate(HIGHLIGHT) == "book_flight"
    screenshot(page, "annotate-150-labels-search.png")
    page.keyboard.press("Enter")
    expected[int(item["id"])] = "book_flight"
    item = wait_for_item(page, not_id=item["id"])

    # Nothing matches: Enter picks nothing; Escape brings every label back. Word starts find a label too.
    page.keyboard.type("xyzzy")
    assert page.evaluate(SHOWN) == [] and "no label matches" in page.text_content("#picker-status")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    assert page.input_value("#picker-input") == "" and len(page.evaluate(SHOWN)) == 150
    assert page.evaluate(HIGHLIGHT) is None
    assert page.evaluate("document.getElementById('item').dataset.itemId") == item["id"]
    page.keyboard.type("rep lost")
    assert page.evaluate(SHOWN) == ["report_lost_card"]
    page.keyboard.press("Enter")
    expected[int(item["id"])] = "report_lost_card"
    item = wait_for_item(page, not_id=item["id"])

    # Recently used labels follow the model's guesses, newest first, each on its own key.
    slots = page.evaluate(SUGGESTIONS)
    guessed = [s["label"] for s in slots if not s["recent"]]
    assert len(guessed) == 5
    recent = [s for s in slots if s["recent"]]
    assert [s["label"] for s in recent] == [
        label for label in ["report_lost_card", "book_flight", top[0][0]] if label not in guessed]
    assert all(s["prob"] == "recent" for s in recent)
    key = next(s["key"] for s in slots if s["label"] == "report_lost_card")
    page.keyboard.press(key)
    expected[int(item["id"])] = "report_lost_card"
    item = wait_for_item(page, not_id=item["id"])

    # "s" is a letter of the search here, not a skip; Ctrl+S skips; Backspace edits the search and,
    # on an empty search, undoes.
    page.keyboard.type("spend")
    assert page.evaluate(SHOWN) == ["spending_history"]
    assert page.evaluate("document.getElementById('item').dataset.itemId") == item["id"]
    page.keyboard.press("Enter")
    expected[int(item["id"])] = "spending_history"
    item = wait_for_item(page, not_id=item["id"])
    page.keyboard.press("Control+s")
    skipped = item
    item = wait_for_item(page, not_id=skipped["id"])
    page.keyboard.press("Backspace")
    assert wait_for_item(page, is_id=skipped["id"]) == skipped
    page.keyboard.type("ca")
    page.keyboard.press("Backspace")
    assert page.input_value("#picker-input") == "c"
    assert page.evaluate("document.getElementById('item').dataset.itemId") == skipped["id"]
    page.keyboard.press("Escape")
    slots = page.evaluate(SUGGESTIONS)
    page.keyboard.press("2")
    expected[int(skipped["id"])] = slots[1]["label"]
    wait_for_item(page, not_id=skipped["id"])

    stored = wait_for(lambda: (got := _labels_of(api, pid, expected)) == expected and got, what="the labels stored")
    assert stored == expected
    assert api.get(f"/api/projects/{pid}/stats")["skipped"] == 0
    assert page.js_errors == []


def _latencies(page, presses: int, type_first: bool = False) -> list[float]:
    page.evaluate(TIMER)
    for _ in range(presses):
        shown = wait_for_item(page)
        if type_first:
            page.keyboard.type(page.evaluate(SHOWN)[0][:4])
            page.keyboard.press("Enter")
        else:
            page.keyboard.press("1")
        wait_for_item(page, not_id=shown["id"])
    return page.evaluate("window.__lat")


def test_the_next_item_follows_a_key_within_a_frame_at_150_labels(page, live_server, clinc, sms_project):
    api, (pid, _) = live_server.api, clinc
    page.goto(f"{live_server.url}/projects/{sms_project.id}/annotate")
    two = _latencies(page, 20)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    by_key = _latencies(page, 30)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    by_search = _latencies(page, 10, type_first=True)
    assert len(two) == 20 and len(by_key) == 30 and len(by_search) == 10
    report = {name: (statistics.median(ms), max(ms)) for name, ms in
              (("2 labels, key 1", two), ("150 labels, key 1", by_key), ("150 labels, search + Enter", by_search))}
    print("\nkey to next item, median / max ms:", {k: f"{m:.1f} / {x:.1f}" for k, (m, x) in report.items()})
    # Against the 2-label page measured in the same run, not an absolute bound: a loaded machine slows both
    # (a 16 ms bound failed at a median of 20 ms under a load average of 4-5). 150 labels may cost a little
    # more per key than 2, never a different order of magnitude.
    base = report["2 labels, key 1"][0]
    assert report["150 labels, key 1"][0] < 3 * base + 5, report
    assert report["150 labels, search + Enter"][0] < 3 * base + 5, report
    assert page.js_errors == []


def test_many_labels_multi_label_toggles_with_the_search_and_submits_on_an_empty_one(page, live_server):
    api = live_server.api
    intents = sorted({row["intent"] for row in clinc_rows()})
    pid = api.post("/api/projects", {"name": f"clinc-multi-{next(_names)}", "labels": intents, "multi_label": True,
                                     "strategy": "margin", "featurizer": "tfidf"})["id"]
    api.post(f"/api/projects/{pid}/items", [{"text": row["text"]} for row in clinc_rows()[:5]])
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    item = wait_for_item(page)
    assert page.evaluate(SUGGESTIONS) == []  # no model and nothing used yet
    expected = {}

    page.keyboard.type("book fl")
    page.keyboard.press("Enter")  # toggles, and empties the search
    assert page.input_value("#picker-input") == "" and len(page.evaluate(SHOWN)) == 150
    page.keyboard.type("hotel")
    assert page.evaluate(SHOWN) == ["book_hotel"]
    page.keyboard.press("Enter")
    assert "chosen: book_flight, book_hotel" in page.text_content("#picker-status")
    page.keyboard.type("book")
    page.keyboard.press("Enter")  # book_flight again: off
    assert "chosen: book_hotel" in page.text_content("#picker-status")
    page.keyboard.type("flight")
    page.keyboard.press("Enter")  # flight_status
    assert page.evaluate("document.getElementById('item').dataset.itemId") == item["id"]
    page.keyboard.press("Enter")  # an empty search: submit
    expected[int(item["id"])] = ["book_hotel", "flight_status"]
    item = wait_for_item(page, not_id=item["id"])

    # The labels just used are on keys now; keys toggle as the search does.
    slots = page.evaluate(SUGGESTIONS)
    assert [(s["key"], s["label"], s["recent"]) for s in slots] == [
        ("1", "book_hotel", True), ("2", "flight_status", True)]
    page.keyboard.press("2")
    assert page.get_attribute("#suggestions .suggestion[data-key='2']", "aria-pressed") == "true"
    page.keyboard.press("Enter")
    expected[int(item["id"])] = ["flight_status"]
    wait_for_item(page, not_id=item["id"])

    stored = wait_for(lambda: (got := _labels_of(api, pid, expected)) == expected and got, what="the labels stored")
    assert stored == expected
    assert page.js_errors == []

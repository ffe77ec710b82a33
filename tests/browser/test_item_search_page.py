"""The project page's search: type, see the items, keep those the model disagrees with, re-open one on the
labeling page, change its label, and the change shows through the API."""
from __future__ import annotations

from browser_helpers import wait_for, wait_for_item

from assay import store


def test_search_filter_disagreements_reopen_and_relabel(page, live_server, sms_data, screenshot):
    api = live_server.api
    pid = api.post("/api/projects", {"name": "search-page", "labels": ["ham", "spam"], "strategy": "margin",
                                     "retrain_every": 100_000})["id"]
    rows = sms_data(30)
    api.post(f"/api/projects/{pid}/items", [{"text": text} for _, text in rows])
    assert live_server.app.extensions["assay.retrain"].wait_idle(120)  # the cold start
    label_of = {text: label for label, text in rows}
    items = api.get(f"/api/projects/{pid}/items?per_page=100")["items"]  # item ids count across projects
    truth = {item["id"]: label_of[item["data"]["text"]] for item in items}
    text_of = {item["id"]: item["data"]["text"] for item in items}
    labeled = [item["id"] for item in items[:20]]
    for item_id in labeled:
        api.post(f"/api/projects/{pid}/annotations", {"item_id": item_id, "label": truth[item_id]})
    # A model version as a retrain records it: it agrees with every label but one, a spam labeled by mistake?
    wrong = next(i for i in labeled if truth[i] == "spam")
    other = {"ham": "spam", "spam": "ham"}
    predictions = [{"item_id": i, "label": other[truth[i]] if i == wrong else truth[i], "confidence": 0.97,
                    "held_out": True} for i in labeled]
    store.replace_queue(live_server.app.extensions["assay.db"], pid, None,
                        {"status": "ok", "model": "logreg", "strategy": "margin", "n_labels": 20},
                        predictions=predictions)
    word = max(text_of[wrong].split(), key=len)  # a word of the item's own text
    expected = [item["id"] for item in api.get(f"/api/projects/{pid}/items?q={_quote(word)}&per_page=100")["items"]]
    assert wrong in expected

    page.goto(f"{live_server.url}/projects/{pid}")
    page.fill("#search-form input[name=q]", word)
    page.wait_for_function("(n) => document.querySelectorAll('#search-results tbody tr').length === n",
                           arg=len(expected))
    shown = page.eval_on_selector_all("#search-results tbody tr", "rows => rows.map(r => Number(r.dataset.itemId))")
    assert shown == expected
    assert "match; showing 1" in page.text_content("#search-status") or "matches; showing 1" in page.text_content("#search-status")

    page.check("#search-form input[name=disagree]")
    page.wait_for_function("() => document.querySelectorAll('#search-results tbody tr').length === 1")
    row = page.locator("#search-results tbody tr")
    assert row.get_attribute("data-item-id") == str(wrong)
    assert row.locator(".search-label").text_content() == "spam"
    assert row.locator(".search-prediction.disagrees").text_content() == "ham 97%"
    screenshot(page, "item-search.png")

    row.locator("a.reopen").click()
    page.wait_for_url(f"**/projects/{pid}/annotate?item={wrong}")
    wait_for_item(page, is_id=str(wrong))
    assert page.text_content("#picked") == "re-opened · your label: spam"
    assert page.get_attribute('.label-button[data-label="spam"]', "aria-pressed") == "true"
    page.click('.label-button[data-label="ham"]')
    wait_for_item(page, not_id=str(wrong))  # on to the queue's items

    def relabeled():
        found = api.get(f"/api/projects/{pid}/items?q={_quote(word)}&per_page=100")["items"]
        return next(item for item in found if item["id"] == wrong)["label"] == "ham"

    wait_for(relabeled, what="the new label through the API")
    assert api.get(f"/api/projects/{pid}/items?disagree=1")["total"] == 0
    assert not page.js_errors


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")

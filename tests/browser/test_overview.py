"""The project list and overview pages in a real Chromium: create, import, a trained model's numbers."""
from __future__ import annotations

import math
import re

from browser_helpers import wait_for, wait_for_item


def test_create_project_from_the_index_page(page, live_server):
    page.goto(live_server.url + "/")
    page.fill("input[name=name]", "news-topics")
    page.fill("input[name=labels]", "world, sport, business")
    page.select_option("select[name=strategy]", "entropy")
    page.check("input[name=multi_label]")
    with page.expect_navigation():
        page.click("#create-project button[type=submit]")
    pid = int(re.search(r"/projects/(\d+)$", page.url).group(1))
    project = live_server.api.get(f"/api/projects/{pid}")
    assert project["labels"] == ["world", "sport", "business"]
    assert project["strategy"] == "entropy" and project["multi_label"] is True
    assert page.text_content("h1") == "news-topics"

    # The same name again: the API's message is shown, and the page stays put.
    page.goto(live_server.url + "/")
    page.fill("input[name=name]", "news-topics")
    page.fill("input[name=labels]", "a, b")
    page.click("#create-project button[type=submit]")
    page.wait_for_selector("#create-status.error")
    assert "already exists" in page.text_content("#create-status")
    assert page.url == live_server.url + "/"
    assert page.js_errors == []


def test_import_form_uploads_a_file_and_shows_errors(page, live_server, sms_project, tmp_path):
    pid = sms_project.id
    good = tmp_path / "more.csv"
    good.write_text("id,text,label\nn1,see you at 8,ham\nn2,WIN a prize now,spam\nn3,ok thanks,\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("message\nhello\n", encoding="utf-8")
    page.goto(f"{live_server.url}/projects/{pid}")

    page.set_input_files("#import-form input[type=file]", str(good))
    page.fill("#import-form input[name=label_column]", "label")
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-status.ok")
    assert page.text_content("#import-status") == "Imported 3 items."
    assert page.is_hidden("#import-result")  # a sentence, not the API's JSON
    # The live part refreshes by itself: 43 items, 2 of them labeled by the import.
    page.wait_for_function("() => document.querySelector('#live').textContent.includes('43')")
    assert live_server.api.get(f"/api/projects/{pid}/stats")["labeled"] == 2

    page.set_input_files("#import-form input[type=file]", str(bad))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-status.error")
    message = page.text_content("#import-result")
    # The API's message, with the option named as the form labels it, never a CLI flag or raw JSON.
    assert message.startswith("no column 'text' in the file") and "“Text column”" in message, message
    assert "text_column" not in message and "--" not in message and "{" not in message

    page.set_input_files("#import-form input[type=file]", str(good))
    page.fill("#import-form input[name=label_column]", "")
    page.click("#import-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#import-status').textContent.includes('skipped')")
    assert page.text_content("#import-status") == "Imported 0 items, skipped 3 already present."
    assert page.is_hidden("#import-result")
    assert live_server.api.get(f"/api/projects/{pid}")["items"] == 43
    assert page.js_errors == []


def test_trained_model_shows_in_annotate_and_overview(page, live_server, sms_data, screenshot):
    """After a real retrain: the item's prediction and picking strategy, the versions table and the curve."""
    api = live_server.api
    pid = api.post("/api/projects", {"name": "sms-trained", "labels": ["ham", "spam"], "strategy": "margin",
                                     "retrain_every": 5})["id"]
    rows = sms_data(80)
    assert {label for label, _ in rows[:30]} == {"ham", "spam"}
    items = [{"id": f"sms{i}", "text": text, **({"label": label} if i < 30 else {})}
             for i, (label, text) in enumerate(rows)]
    assert api.post(f"/api/projects/{pid}/items?label_column=label", items) == {"imported": 80, "skipped": 0}
    assert live_server.app.extensions["assay.retrain"].wait_idle(90)
    history = api.get(f"/api/projects/{pid}/stats")["history"]
    assert [v["status"] for v in history] == ["ok"], history

    with page.expect_response(lambda r: "/queue" in r.url) as queue:
        page.goto(f"{live_server.url}/projects/{pid}/annotate")
    served = queue.value.json()
    shown = wait_for_item(page)
    item = next(i for i in served if str(i["id"]) == shown["id"])
    pred = item["prediction"]
    # The first item may be an audit (a random pick for the accuracy estimate), also with the prediction.
    assert pred is not None and item["strategy"] in ("margin", "audit") and item["model_version"] == 1
    # The page rounds as JavaScript's Math.round does (halves up), not as Python's round (halves to even).
    shown_pct = math.floor(100 * pred["confidence"] + 0.5)
    assert page.text_content("#prediction") == f"Model: {pred['label']} {shown_pct}% sure"
    picked = page.text_content("#picked")
    assert picked.startswith(f"picked by {item['strategy']}") and picked.endswith(" · model v1")
    page.wait_for_function("() => document.getElementById('progress').textContent.includes('model v1')")
    screenshot(page, "annotate-trained.png")

    page.goto(f"{live_server.url}/projects/{pid}")
    row = page.locator("table.versions tbody tr").first
    cells = [c.strip() for c in row.locator("td").all_text_contents()]
    accuracy = history[0]["accuracy"]
    assert cells[:4] == ["v1", "ok", "30", f"{100 * accuracy:.1f}% ± {100 * history[0]['accuracy_std']:.1f}"]
    wait_for(lambda: page.evaluate("() => document.getElementById('curve').naturalWidth") == 720,
             what="the learning curve image")
    screenshot(page, "overview-trained.png")
    assert page.js_errors == []

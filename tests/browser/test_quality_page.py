"""The project page's answer to "how good is the model, and when can I stop?" in a real Chromium."""
from __future__ import annotations

import re

from browser_helpers import wait_for


def test_estimate_card_and_target_form(page, live_server, sms_data, screenshot):
    api = live_server.api
    service = live_server.app.extensions["assay.retrain"]
    pid = api.post("/api/projects", {"name": "sms-quality", "labels": ["ham", "spam"], "strategy": "margin",
                                     "retrain_every": 10, "audit_share": 0.1})["id"]
    rows = sms_data(300)
    truth = {}
    items = []
    for i, (label, text) in enumerate(rows):
        items.append({"id": f"q{i}", "text": text, **({"label": label} if i < 20 else {})})
        truth[text] = label
    assert api.post(f"/api/projects/{pid}/items?label_column=label", items) == {"imported": 300, "skipped": 0}
    assert service.wait_idle(120)
    # Label through the queue, as annotators do: every item comes with the live model's prediction.
    for _ in range(4):
        for item in api.get(f"/api/projects/{pid}/queue?n=10"):
            api.post(f"/api/projects/{pid}/annotations", {"item_id": item["id"], "label": truth[item["data"]["text"]]})
        assert service.wait_idle(120)
    quality = api.get(f"/api/projects/{pid}/stats")["quality"]
    assert quality["estimate"] is not None, quality

    page.goto(f"{live_server.url}/projects/{pid}")
    est = quality["estimate"]
    digits = 1 if est["high"] - est["low"] < 0.04 else 0  # whole percents unless the range is that narrow
    shown = page.text_content("#estimate")
    assert shown == f"{100 * est['accuracy']:.{digits}f}%"
    # Plain words first (issues 27.4, 29.7): the sentence and what to do are visible, the statistics are not.
    sentence = " ".join(page.text_content("#quality-sentence").split())
    assert sentence == (f"About {shown} of items are labeled correctly by the model "
                        f"(between {100 * est['low']:.{digits}f}% and {100 * est['high']:.{digits}f}%).")
    advice = page.text_content("#advice")
    assert advice.startswith(("You can stop:", "Keep labeling:", "Keep labeling for now:")), advice
    assert page.is_visible("#advice") and not page.is_visible("#stop-signal")
    assert page.evaluate("() => document.getElementById('quality-details').open") is False
    assert "90% interval" not in page.inner_text("#quality")  # the closed details hide it
    page.click("#quality-details summary")
    assert page.is_visible("#stop-signal")
    details = page.inner_text("#quality-details")
    assert "90% interval" in details and "Always answering “ham”" in details
    assert "kappa" in details or "there is none yet" in details
    assert "Set a target accuracy" in page.text_content("#projection")

    page.fill("#target-form input[name=target]", "150")
    page.click("#target-form button[type=submit]")
    page.wait_for_selector("#target-status.error")  # the browser's own check or the API's message
    page.fill("#target-form input[name=target]", "99.5")
    page.click("#target-form button[type=submit]")
    page.wait_for_selector("#target-status.ok")
    assert api.get(f"/api/projects/{pid}")["target_accuracy"] == 0.995
    page.wait_for_function("() => document.getElementById('projection').textContent.includes('Target 99.5%')")
    text = page.text_content("#projection")
    assert re.search(r"labels in all|level off|projection needs|could not be fitted|no reliable count|reached|"
                     r"too early to say", text), text
    # An opened "Details" stays open while the live part refreshes (it is swapped on each new version).
    assert page.evaluate("() => document.getElementById('quality-details').open") is True
    wait_for(lambda: page.evaluate("() => document.getElementById('curve').naturalWidth") == 720,
             what="the quality plot")
    screenshot(page, "overview-quality.png")
    assert page.js_errors == []

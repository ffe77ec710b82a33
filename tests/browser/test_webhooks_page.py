"""The overview's webhooks card in a real Chromium: add a webhook, watch its deliveries in the log, delete it."""
from __future__ import annotations

import json

from browser_helpers import wait_for

from assay.webhooks.events import EVENTS
from tests.webhook_receiver import Receiver, signed_by


def test_an_owner_adds_a_webhook_sees_its_delivery_log_and_deletes_it(page, live_server):
    api = live_server.api
    pid = api.post("/api/projects", {"name": "hooked", "labels": ["ham", "spam"]})["id"]
    api.post(f"/api/projects/{pid}/items", [{"text": f"message {i}"} for i in range(5)])
    receiver = Receiver(answers=[500, 200])
    try:
        page.goto(f"{live_server.url}/projects/{pid}")
        boxes = page.eval_on_selector_all("#webhook-form input[name=events]", "els => els.map(e => e.value)")
        assert boxes == list(EVENTS)
        assert page.is_visible("#webhook-log-empty")
        # Some markup in the URL's query: it must come back as text, never as elements.
        url = receiver.url + "?tag=<b>bold</b>"
        page.fill("#webhook-form input[name=url]", url)
        for event in ("model.trained", "model.failed", "project.stop_signal"):
            page.uncheck(f"#webhook-form input[value='{event}']")
        page.click("#webhook-form button[type=submit]")
        page.wait_for_selector("#webhook-status.ok")
        secret = page.text_content("#webhook-secret code")
        assert len(secret) >= 32 and page.is_visible("#webhook-secret")
        page.wait_for_selector("#webhook-list tbody tr")
        assert page.text_content("#webhook-list .webhook-url") == url
        assert page.query_selector("#webhook-list b") is None
        hooks = api.get(f"/api/projects/{pid}/webhooks")
        assert [(h["url"], h["events"]) for h in hooks] == [(url, ["annotation.created"])]

        item = api.get(f"/api/projects/{pid}/queue?n=1")[0]
        api.post(f"/api/projects/{pid}/annotations", {"item_id": item["id"], "label": "spam"})
        got = receiver.wait_for(2)
        assert all(signed_by(r, secret) for r in got)
        assert json.loads(got[1]["body"])["data"]["label"] == "spam"
        # The page polls: the failed attempt and the delivered one, newest first.
        wait_for(lambda: page.locator("#webhook-log tbody tr").count() == 2, timeout=15, what="two attempts logged")
        rows = page.eval_on_selector_all("#webhook-log tbody tr",
                                         "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
        assert [r[1] for r in rows] == ["annotation.created"] * 2
        assert [(r[3], r[4]) for r in rows] == [("2", "200"), ("1", "500")]
        assert rows[0][5] == "delivered" and rows[1][5].startswith("HTTP 500")
        assert not page.is_visible("#webhook-log-empty")
        wait_for(lambda: page.text_content("#webhook-list tbody tr td:nth-child(3)") == "1", timeout=15,
                 what="the delivered count")

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#webhook-list button")
        wait_for(lambda: page.locator("#webhook-list tbody tr").count() == 0, what="the webhook gone")
        assert api.get(f"/api/projects/{pid}/webhooks") == []
        assert page.js_errors == []
    finally:
        receiver.close()


def test_a_refused_url_shows_the_servers_reason(page, live_server):
    pid = live_server.api.post("/api/projects", {"name": "hooked-refused", "labels": ["a", "b"]})["id"]
    page.goto(f"{live_server.url}/projects/{pid}")
    page.fill("#webhook-form input[name=url]", "http://10.0.0.8/hook")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("#webhook-status.error")
    assert "ASSAY_WEBHOOK_HOSTS" in page.text_content("#webhook-status")
    assert page.locator("#webhook-list tbody tr").count() == 0

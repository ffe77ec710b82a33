"""The annotate page in a real Chromium: keyboard labeling, undo, skip, retries, escaping."""
from __future__ import annotations

import json

from browser_helpers import current, export_rows, wait_for, wait_for_item

def test_label_undo_skip_by_keyboard_without_reload(page, live_server, sms_project, screenshot):
    api, pid = live_server.api, sms_project.id
    documents = []
    page.on("request", lambda r: documents.append(r.url) if r.resource_type == "document" else None)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    first = wait_for_item(page)
    page.evaluate("window.__marker = 1")
    assert first["text"] in sms_project.texts

    answered = []  # (item, label) in order
    item = first
    for n in range(5):
        label, key = ("ham", "1") if n % 2 == 0 else ("spam", "2")
        page.keyboard.press(key)
        nxt = wait_for_item(page, not_id=item["id"])
        assert nxt["text"] in sms_project.texts and nxt["text"] != item["text"]
        assert nxt["id"] not in [a["id"] for a, _ in answered]
        answered.append((item, label))
        item = nxt

    # Undo brings back the fifth item, text and all.
    page.keyboard.press("Backspace")
    undone, _ = answered.pop()
    assert wait_for_item(page, is_id=undone["id"]) == undone
    # Skip it; the item that was showing before the undo comes next.
    page.keyboard.press("s")
    assert wait_for_item(page, not_id=undone["id"]) == item

    stats = wait_for(lambda: (s := api.get(f"/api/projects/{pid}/stats"))["labeled"] == 4 and s["skipped"] == 1
                     and s, what="4 labels and 1 skip on the server")
    assert stats["label_counts"] == {"ham": 2, "spam": 2}
    rows = export_rows(api, pid)
    assert len(rows) == 4
    assert {r["item_id"]: r["label"] for r in rows} == {int(a["id"]): label for a, label in answered}
    assert {r["data"]["text"] for r in rows} == {a["text"] for a, _ in answered}
    assert all(r["annotator"] == "local" for r in rows)
    # Each answer carried its own idempotency key and the time spent on the item.
    stored = live_server.app.extensions["assay.db"].reader.execute(
        "SELECT idempotency_key, duration_ms FROM annotations WHERE project_id = ? AND undone_at IS NULL",
        (pid,)).fetchall()
    assert len(stored) == 5 and len({k for k, _ in stored}) == 5
    assert all(k and d is not None and d >= 0 for k, d in stored)

    # Everything happened in one page load.
    assert page.evaluate("window.__marker") == 1
    assert documents == [f"{live_server.url}/projects/{pid}/annotate"]
    page.wait_for_function("() => document.getElementById('progress').textContent.startsWith('4 / 40 labeled')")
    assert "1 skipped" in page.text_content("#progress")
    assert page.is_hidden("#outbox")
    assert page.js_errors == []
    screenshot(page, "annotate.png")

    page.goto(f"{live_server.url}/projects/{pid}")
    assert page.text_content("#stat-labeled").strip() == "4"
    assert page.text_content("#stat-skipped").strip() == "1"
    page.wait_for_function("() => document.getElementById('curve').complete")
    screenshot(page, "overview.png")
    page.goto(live_server.url + "/")
    assert page.locator(f"a[href='/projects/{pid}']").count() >= 1
    screenshot(page, "index.png")
    assert page.js_errors == []


def test_unsent_answers_are_kept_retried_and_not_double_counted(page, live_server, sms_project):
    api, pid = live_server.api, sms_project.id
    lose = {"on": True, "lost": 0}
    replies = []

    def flaky(route):
        if lose["on"] and route.request.method == "POST":
            route.fetch()  # the server stores the answer, but its reply never arrives
            lose["lost"] += 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.on("response", lambda r: replies.append(r) if r.request.method == "POST" and "/annotations" in r.url else None)
    page.route("**/api/projects/*/annotations", flaky)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    first = wait_for_item(page)
    page.keyboard.press("1")
    second = wait_for_item(page, not_id=first["id"])
    page.keyboard.press("2")
    wait_for_item(page, not_id=second["id"])  # the UI moves on although nothing is confirmed
    page.wait_for_selector("#outbox:not([hidden])")
    assert page.text_content("#outbox") == "2 unsent, retrying"
    outbox = json.loads(page.evaluate(f"localStorage.getItem('assay-outbox:local:{pid}')"))
    assert [op["item_id"] for op in outbox] == [int(first["id"]), int(second["id"])]

    lose["on"] = False
    page.wait_for_selector("#outbox", state="hidden", timeout=20_000)
    assert lose["lost"] >= 1
    assert page.evaluate(f"localStorage.getItem('assay-outbox:local:{pid}')") is None
    stats = api.get(f"/api/projects/{pid}/stats")
    assert stats["labeled"] == 2 and stats["label_counts"] == {"ham": 1, "spam": 1}
    assert {r["item_id"]: r["label"] for r in export_rows(api, pid)} == {int(first["id"]): "ham",
                                                                      int(second["id"]): "spam"}
    # The first answer reached the server before its reply was lost: the resend was recognized.
    bodies = [r.json() for r in replies]
    assert any(b["duplicate"] for b in bodies if b["item_id"] == int(first["id"]))
    assert page.js_errors == []


def test_unsent_answers_survive_a_reload(page, live_server, sms_project):
    api, pid = live_server.api, sms_project.id
    page.route("**/api/projects/*/annotations", lambda route: route.abort("internetdisconnected"))
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    first = wait_for_item(page)
    page.keyboard.press("2")
    wait_for_item(page, not_id=first["id"])
    page.wait_for_selector("#outbox:not([hidden])")
    assert api.get(f"/api/projects/{pid}/stats")["labeled"] == 0

    page.unroute("**/api/projects/*/annotations")
    page.reload()
    # The answer left in localStorage is sent; its item is not offered again.
    shown = wait_for_item(page)
    assert shown["id"] != first["id"]
    wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["labeled"] == 1, what="the resent label")
    assert {r["item_id"]: r["label"] for r in export_rows(api, pid)} == {int(first["id"]): "spam"}
    assert page.evaluate(f"localStorage.getItem('assay-outbox:local:{pid}')") is None
    assert page.js_errors == []


NASTY = [
    "<script>window.__xss = 1; alert(1)</script>",
    '<img src=x onerror="window.__xss = 2; alert(2)">',
    '"><svg onload="alert(3)"></svg><b>bold?</b>',
]


def test_item_text_with_markup_is_shown_as_text(page, live_server):
    api = live_server.api
    pid = api.post("/api/projects", {"name": "xss <b>project</b>", "labels": ["<i>ok</i>", "bad"],
                                     "strategy": "margin"})["id"]
    assert api.post(f"/api/projects/{pid}/items", [{"text": t} for t in NASTY])["imported"] == 3
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    shown = []
    item = wait_for_item(page)
    for n in range(3):
        assert item["text"] in NASTY
        shown.append(item["text"])
        assert page.locator("#item-body script, #item-body img, #item-body svg, #item-body b").count() == 0
        page.keyboard.press("1")
        if n < 2:
            item = wait_for_item(page, not_id=item["id"])
    assert sorted(shown) == sorted(NASTY)
    page.wait_for_selector("#done:not([hidden])")
    assert page.text_content(".label-button[data-key='1'] .label-name") == "<i>ok</i>"
    wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["labeled"] == 3, what="3 labels")
    for url in (f"/projects/{pid}", "/"):
        page.goto(live_server.url + url)
        assert page.locator("h1 b, .project-name b, .chip i").count() == 0
    page.wait_for_timeout(300)  # give an injected onerror handler its chance to fire
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    assert page.js_errors == []


def test_multi_label_toggles_with_number_keys_and_submits_with_enter(page, live_server):
    api = live_server.api
    pid = api.post("/api/projects", {"name": "topics", "labels": ["sport", "politics", "tech"],
                                     "multi_label": True, "strategy": "margin"})["id"]
    api.post(f"/api/projects/{pid}/items", [{"text": f"headline number {i}"} for i in range(6)])
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    first = wait_for_item(page)
    for key in ("1", "3", "3", "2"):
        page.keyboard.press(key)
    pressed = page.eval_on_selector_all(".label-button[aria-pressed='true']", "bs => bs.map(b => b.dataset.label)")
    assert pressed == ["sport", "politics"]
    assert current(page)["id"] == first["id"]  # toggling alone never answers
    page.keyboard.press("Enter")
    second = wait_for_item(page, not_id=first["id"])
    assert page.locator(".label-button[aria-pressed='true']").count() == 0
    page.keyboard.press("3")
    page.click("#submit")
    wait_for_item(page, not_id=second["id"])
    wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["labeled"] == 2, what="2 labels")
    labels = {r["item_id"]: r["labels"] for r in export_rows(api, pid)}
    assert labels == {int(first["id"]): ["sport", "politics"], int(second["id"]): ["tech"]}
    assert page.js_errors == []



def test_tabular_and_image_items_render_without_markup(page, live_server):
    api = live_server.api
    tab = api.post("/api/projects", {"name": "adults", "labels": ["<=50K", ">50K"], "item_type": "tabular",
                                     "strategy": "margin"})["id"]
    api.post(f"/api/projects/{tab}/items", [{"age": 39, "occupation": "<b>Adm-clerical</b>"}])
    page.goto(f"{live_server.url}/projects/{tab}/annotate")
    wait_for_item(page)
    cells = page.eval_on_selector_all("#item-body .item-table tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert sorted(cells) == [["age", "39"], ["occupation", "<b>Adm-clerical</b>"]]
    assert page.locator("#item-body b").count() == 0
    assert page.text_content(".label-button[data-key='2'] .label-name") == ">50K"

    img = api.post("/api/projects", {"name": "pictures", "labels": ["cat", "dog"], "item_type": "image",
                                     "strategy": "margin"})["id"]
    # Over HTTP an image path must name a file already in the project's media store.
    import io
    import os

    from PIL import Image

    from assay.web.media import project_dir

    folder = project_dir(live_server.app.config["MEDIA_DIR"], img)
    os.makedirs(folder, exist_ok=True)
    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format="PNG")
    with open(os.path.join(folder, "ab12cd.png"), "wb") as fh:
        fh.write(buf.getvalue())
    api.post(f"/api/projects/{img}/items", [{"image": "ab12cd.png", "source": "shelter"}])
    page.goto(f"{live_server.url}/projects/{img}/annotate")
    wait_for_item(page)
    assert page.get_attribute("#item-body img.item-image", "src") == f"/projects/{img}/media/ab12cd.png"
    assert page.text_content("#item-body details.item-extra summary") == "1 more field"
    assert page.js_errors == []


def test_tabular_items_show_columns_in_the_files_order(page, live_server):
    api = live_server.api
    pid = api.post("/api/projects", {"name": "ordered-table", "labels": ["low", "high"], "item_type": "tabular",
                                     "strategy": "margin"})["id"]
    api.post(f"/api/projects/{pid}/items", data=b"workclass,age,occupation,education\nPrivate,39,Sales,Bachelors\n",
             content_type="text/csv")
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    wait_for_item(page)
    keys = page.eval_on_selector_all("#item-body .item-table tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert keys == ["workclass", "age", "occupation", "education"]
    assert page.js_errors == []

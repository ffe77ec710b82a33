"""A logged-in annotator labels through a network cut; real digit images and Adult rows on the page."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from browser_helpers import wait_for, wait_for_item

from assay.web import auth
from assay.domain import projects
from assay import store
from tests.data import load_adult


def test_labels_made_offline_arrive_once_after_the_network_returns(page, auth_server, screenshot):
    db = auth_server.app.extensions["assay.db"]
    pid = projects.create(db, {"name": "sms-offline", "labels": ["ham", "spam"], "strategy": "margin"})
    store.insert_items(db, pid, [(f"o{i}", {"text": f"offline message {i}"}, None) for i in range(20)])
    user_id = store.create_user(db, "olga", auth.hash_password("pw-olga"))
    store.grant(db, user_id, pid, "annotator")

    page.goto(f"{auth_server.url}/login?next=/projects/{pid}/annotate")
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", "pw-olga")
    with page.expect_navigation():
        page.click("button[type=submit]")
    shown = [wait_for_item(page)]
    page.keyboard.press("1")
    shown.append(wait_for_item(page, not_id=shown[-1]["id"]))

    page.context.set_offline(True)
    for key in ("2", "1", "2"):
        page.keyboard.press(key)
        shown.append(wait_for_item(page, not_id=shown[-1]["id"]))  # the page moves on while offline
    page.wait_for_selector("#outbox:not([hidden])")
    screenshot(page, "annotate-offline.png")
    page.context.set_offline(False)
    page.wait_for_selector("#outbox", state="hidden", timeout=30_000)

    def stored():
        return db.reader.execute(
            "SELECT item_id, label FROM annotations WHERE project_id = ? AND annotator = 'olga' AND undone_at IS NULL"
            " ORDER BY id", (pid,)).fetchall()

    # The badge hides once a send succeeds, while the rest of the outbox may still be on its way.
    rows = wait_for(lambda: len(stored()) >= 4 and stored(), timeout=30, what="olga's four answers")
    expected = list(zip([int(s["id"]) for s in shown[:4]], ['"ham"', '"spam"', '"ham"', '"spam"']))
    assert [(r[0], r[1]) for r in rows] == expected  # every label once, in order
    assert page.js_errors == []


def _digits_zip(n: int) -> tuple[bytes, dict]:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    buf = io.BytesIO()
    truth = {}
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            img = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8), mode="L").resize((64, 64))
            png = io.BytesIO()
            img.save(png, format="PNG")
            name = f"digit_{i:03d}.png"
            zf.writestr(name, png.getvalue())
            truth[name] = str(digits.target[i])
    return buf.getvalue(), truth


def _multipart(name: str, raw: bytes) -> tuple[bytes, str]:
    boundary = "assay-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + raw + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_digit_images_are_shown_and_labeled(page, live_server, screenshot):
    api = live_server.api
    pid = api.post("/api/projects", {"name": "digits-browser", "labels": [str(d) for d in range(10)],
                                     "item_type": "image", "strategy": "entropy"})["id"]
    raw, truth = _digits_zip(40)
    body, ctype = _multipart("digits.zip", raw)
    assert api.post(f"/api/projects/{pid}/items", data=body, content_type=ctype) == {"imported": 40, "skipped": 0}
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    item = wait_for_item(page)
    img = page.locator("#item-body img.item-image")
    wait_for(lambda: page.evaluate("() => { const i = document.querySelector('#item-body img.item-image');"
                                   " return i && i.complete && i.naturalWidth > 0; }"), what="the image to load")
    assert img.evaluate("i => i.naturalWidth") == 64
    screenshot(page, "annotate-image.png")
    data = store.get_item(live_server.app.extensions["assay.db"].reader, pid, int(item["id"]))["data"]
    label = truth[data["name"]]
    assert "tiny" in img.get_attribute("class")  # scaled up, not shown as a speck
    # Digit labels are their own keys: 7 picks "7".
    page.keyboard.press(label)
    wait_for_item(page, not_id=item["id"])
    wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["label_counts"] == {label: 1}, what="the label")
    assert page.js_errors == []


def test_adult_rows_are_shown_as_a_table(page, live_server, screenshot):
    api = live_server.api
    pid = api.post("/api/projects", {"name": "adult-browser", "labels": ["<=50K", ">50K"], "item_type": "tabular",
                                     "strategy": "margin"})["id"]
    rows = load_adult(30)
    api.post(f"/api/projects/{pid}/items", [{k: v for k, v in r.items() if k != "income"} for r in rows])
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    wait_for_item(page)
    cells = dict(page.eval_on_selector_all("#item-body .item-table tr",
                                           "rows => rows.map(r => [...r.cells].map(c => c.textContent))"))
    assert {"age", "workclass", "education", "occupation", "hours-per-week"} <= set(cells)
    match = [r for r in rows if r["age"] == cells["age"] and r["fnlwgt"] == cells["fnlwgt"]]
    assert match and cells["occupation"] == match[0]["occupation"]
    screenshot(page, "annotate-table.png")
    assert page.js_errors == []

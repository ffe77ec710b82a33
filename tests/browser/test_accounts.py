"""With accounts on: the pages behind a login, and the annotate page's changes carrying the CSRF token."""
from __future__ import annotations

from browser_helpers import wait_for, wait_for_item

from assay.web import auth
from assay.domain import projects
from assay import store


def _user(db, name: str, password: str, project_id, role: str) -> None:
    user_id = store.create_user(db, name, auth.hash_password(password))
    store.grant(db, user_id, project_id, role)


def test_annotator_logs_in_and_labels_through_csrf_checked_requests(page, auth_server, screenshot):
    db = auth_server.app.extensions["assay.db"]
    pid = projects.create(db, {"name": "sms-team", "labels": ["ham", "spam"], "strategy": "margin"})
    store.insert_items(db, pid, [(f"t{i}", {"text": f"team message {i}"}, None) for i in range(12)])
    hidden = projects.create(db, {"name": "not-yours", "labels": ["a", "b"], "strategy": "margin"})
    _user(db, "ann", "correct horse", pid, "annotator")

    page.goto(f"{auth_server.url}/projects/{pid}/annotate")
    assert "/login" in page.url  # pages need a login
    screenshot(page, "login.png")
    page.fill("input[name=name]", "ann")
    page.fill("input[name=password]", "correct horse")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith(f"/projects/{pid}/annotate")
    assert page.text_content(".whoami span") == "ann"

    first = wait_for_item(page)
    page.keyboard.press("2")
    second = wait_for_item(page, not_id=first["id"])
    page.keyboard.press("s")
    wait_for_item(page, not_id=second["id"])
    page.keyboard.press("Backspace")  # a DELETE, also CSRF-checked
    wait_for_item(page, is_id=second["id"])
    screenshot(page, "annotate-logged-in.png")

    def stored():
        return db.reader.execute(
            "SELECT item_id, label, skipped FROM annotations WHERE project_id = ? AND annotator = 'ann'"
            " AND undone_at IS NULL", (pid,)).fetchall()

    wait_for(lambda: len(stored()) == 1, what="one live answer by ann")
    assert [(r[0], r[1], r[2]) for r in stored()] == [(int(first["id"]), '"spam"', 0)]
    assert page.is_hidden("#message") and page.is_hidden("#outbox")

    # An annotator sees only their project, and neither the create, import nor export forms.
    page.goto(auth_server.url + "/")
    assert page.locator(".project-name").all_text_contents() == ["sms-team"]
    assert page.locator("#create-project").count() == 0
    page.goto(f"{auth_server.url}/projects/{pid}")
    assert page.locator("#import-form").count() == 0 and page.get_by_text("Download JSONL").count() == 0
    page.goto(f"{auth_server.url}/projects/{hidden}")
    assert page.text_content("h1").startswith("403")
    assert page.js_errors == []

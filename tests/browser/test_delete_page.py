"""Deleting items and a project from the overview page, in a real Chromium: confirmed, with the server's messages."""
from __future__ import annotations


def _project(live_server, name, n=5):
    pid = live_server.api.post("/api/projects", {"name": name, "labels": ["ham", "spam"]})["id"]
    live_server.api.post(f"/api/projects/{pid}/items", [{"id": f"{name}-{i}", "text": f"message {i}"} for i in range(n)])
    ids = [i["id"] for i in live_server.api.get(f"/api/projects/{pid}/queue?n={n}")]
    live_server.api.post(f"/api/projects/{pid}/annotations", {"item_id": ids[0], "label": "ham"})
    return pid, ids


def test_delete_items_then_the_project_from_the_overview(page, live_server):
    pid, ids = _project(live_server, "to-delete")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}/projects/{pid}")

    # A labeled item is refused with the server's message, and nothing goes.
    page.fill("#delete-items-form input[name=ids]", f"{ids[0]}, {ids[1]}")
    page.click("#delete-items-form button[type=submit]")
    page.wait_for_selector("#delete-items-status.error")
    assert "carry labels" in page.text_content("#delete-items-status")
    assert live_server.api.get(f"/api/projects/{pid}")["items"] == 5

    page.fill("#delete-items-form input[name=ids]", f"{ids[1]} {ids[2]}")
    page.click("#delete-items-form button[type=submit]")
    page.wait_for_selector("#delete-items-status.ok")
    assert "Deleted 2 items" in page.text_content("#delete-items-status")
    assert live_server.api.get(f"/api/projects/{pid}")["items"] == 3

    # The project: a wrong name deletes nothing; the right one goes back to the project list.
    page.fill("#delete-project-form input[name=confirm]", "to-delet")
    page.click("#delete-project-form button[type=submit]")
    page.wait_for_selector("#delete-project-status.error")
    assert live_server.api.get(f"/api/projects/{pid}")["items"] == 3
    page.fill("#delete-project-form input[name=confirm]", "to-delete")
    with page.expect_navigation():
        page.click("#delete-project-form button[type=submit]")
    assert page.url.rstrip("/") == live_server.url
    assert "to-delete" not in [p["name"] for p in live_server.api.get("/api/projects")]
    assert page.js_errors == []


def test_the_refusal_speaks_of_the_page_not_the_api(page, live_server):
    pid, ids = _project(live_server, "page-words")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}/projects/{pid}")
    page.fill("#delete-items-form input[name=ids]", f"{ids[0]}")
    page.click("#delete-items-form button[type=submit]")
    page.wait_for_selector("#delete-items-status.error")
    said = page.text_content("#delete-items-status")
    assert "1 of these items carries labels; nothing was deleted" in said
    assert "tick \u201calso items that carry labels\u201d" in said
    assert "with_labels" not in said
    assert page.js_errors == []

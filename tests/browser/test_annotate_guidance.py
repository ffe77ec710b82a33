"""The annotate page tells a newcomer what is going on: no items yet, which key picks which label,
and a model that fails in the server."""
from __future__ import annotations

from itertools import count

from browser_helpers import wait_for_item

_names = count(1)


def _project(api, labels, n_items=0, **fields):
    pid = api.post("/api/projects", {"name": f"guide-{next(_names)}", "labels": labels, "strategy": "margin",
                                     **fields})["id"]
    if n_items:
        api.post(f"/api/projects/{pid}/items", [{"text": f"message number {i}"} for i in range(n_items)])
    return pid


def _hint(page) -> str:
    return " ".join(page.text_content(".keys").split())


# -- no items yet -----------------------------------------------------------------

def test_an_empty_project_says_no_items_yet_and_links_to_the_import_form(page, live_server):
    api = live_server.api
    pid = _project(api, ["ham", "spam"])
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    page.wait_for_selector("#done:not([hidden])")
    done = page.inner_text("#done")
    assert "No items yet" in done
    assert "Nothing left to label" not in done and "Every item is labeled" not in done
    link = page.locator("#done a[href$='#import-form']")
    assert link.is_visible()
    link.click()
    page.wait_for_url(f"**/projects/{pid}#import-form")
    assert page.locator("#import-form").is_visible()

    # Items imported meanwhile show up by themselves; once they are answered, the page says so.
    page.go_back()
    page.wait_for_selector("#done:not([hidden])")
    api.post(f"/api/projects/{pid}/items", [{"text": "the only message"}])
    first = wait_for_item(page)
    assert first["text"] == "the only message"
    page.keyboard.press("1")
    page.wait_for_selector("#done:not([hidden])")
    done = page.inner_text("#done")
    assert "Nothing left to label" in done and "No items yet" not in done
    assert page.js_errors == []


def test_a_page_with_nothing_to_show_asks_for_items_only_with_the_stats_poll(page, live_server):
    pid = _project(live_server.api, ["ham", "spam"])
    pulls = []
    page.on("request", lambda r: pulls.append(r.url) if "/queue" in r.url else None)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    page.wait_for_selector("#done:not([hidden])")
    page.wait_for_timeout(2000)
    assert len(pulls) <= 3, f"{len(pulls)} queue pulls in 2 s with nothing to label"

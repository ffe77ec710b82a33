"""The annotate page tells a newcomer what is going on: no items yet, which key picks which label,
and a model that fails in the server."""
from __future__ import annotations

import sys
from itertools import count

import pytest
from browser_helpers import export_rows, serve, wait_for, wait_for_item

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


# -- keys -------------------------------------------------------------------------

def test_digit_labels_are_picked_by_their_own_digit(page, live_server):
    api = live_server.api
    digits = [str(d) for d in range(10)]
    pid = _project(api, digits, n_items=3)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    item = wait_for_item(page)
    kbd = page.eval_on_selector_all(".label-button", "bs => bs.map(b => [b.dataset.label, b.querySelector('kbd').textContent])")
    assert kbd == [[d, d] for d in digits]
    assert "Keys 0–9 pick a label" in _hint(page)
    answered = {}
    for key in ("1", "0", "9"):
        page.keyboard.press(key)
        answered[int(item["id"])] = key
        if len(answered) < 3:
            item = wait_for_item(page, not_id=item["id"])
    wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["labeled"] == 3, what="3 labels")
    assert {r["item_id"]: r["label"] for r in export_rows(api, pid)} == answered
    assert page.js_errors == []


def test_the_key_hint_names_only_keys_that_exist(page, live_server):
    pid = _project(live_server.api, ["negative", "neutral", "positive"], n_items=1)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    wait_for_item(page)
    hint = _hint(page)
    assert "Keys 1–3 pick a label" in hint and "1–9" not in hint
    assert page.locator(".label-button kbd").all_text_contents() == ["1", "2", "3"]


def test_a_project_can_set_its_own_keys(page, live_server):
    api = live_server.api
    pid = _project(api, ["ham", "spam"], n_items=2, keys=["j", "k"])
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    first = wait_for_item(page)
    assert page.locator(".label-button kbd").all_text_contents() == ["j", "k"]
    assert "Keys j, k pick a label" in _hint(page)
    page.keyboard.press("1")  # not a key of this project: nothing happens
    page.keyboard.press("K")  # letters work with Shift or Caps Lock too
    second = wait_for_item(page, not_id=first["id"])
    page.keyboard.press("j")
    page.wait_for_selector("#done:not([hidden])")
    wait_for(lambda: api.get(f"/api/projects/{pid}/stats")["labeled"] == 2, what="2 labels")
    assert {r["item_id"]: r["label"] for r in export_rows(api, pid)} == {int(first["id"]): "spam",
                                                                      int(second["id"]): "ham"}
    assert page.js_errors == []


# -- a model that fails in the server ---------------------------------------------------

MODEL_SOURCE = """
from sklearn.linear_model import LogisticRegression


def make():
    return LogisticRegression(max_iter=200)
"""


@pytest.fixture
def server_without_the_model(tmp_path):
    """A server whose worker cannot import a model the project was created with (as from a CLI shell
    with PYTHONPATH set, and a server started without it)."""
    from assay.domain import projects

    module = f"shell_only_model_{next(_names)}"
    (tmp_path / f"{module}.py").write_text(MODEL_SOURCE)
    with serve(tmp_path) as live:
        sys.path.insert(0, str(tmp_path))
        try:
            pid = projects.create(live.app.extensions["assay.db"], {
                "name": "shell-only", "labels": ["ham", "spam"], "strategy": "margin",
                "model": f"{module}:make", "retrain_every": 1000})
        finally:
            # The worker process starts later, with the server's own sys.path: the module is not on it.
            sys.path.remove(str(tmp_path))
            sys.modules.pop(module, None)
        yield live, pid, module


def test_a_failing_model_shows_a_banner_that_says_what_to_do(page, server_without_the_model, screenshot):
    live, pid, module = server_without_the_model
    api = live.api
    page.goto(f"{live.url}/projects/{pid}/annotate")
    page.wait_for_selector("#done:not([hidden])")
    assert page.is_hidden("#model-error")

    # Labeled items arrive with the import, which starts a retrain; it fails in the worker.
    rows = [{"text": f"win a prize now {i}", "label": "spam"} for i in range(6)]
    rows += [{"text": f"see you at lunch {i}", "label": "ham"} for i in range(6)]
    rows += [{"text": f"an unlabeled message {i}"} for i in range(10)]
    api.post(f"/api/projects/{pid}/items?label_column=label", rows)
    assert live.app.extensions["assay.retrain"].wait_idle(120)
    stats = api.get(f"/api/projects/{pid}/stats")
    assert stats["history"][-1]["status"] == "failed"
    assert "not importable in the server's environment" in stats["last_error"]
    assert "PYTHONPATH" in stats["last_error"]

    banner = page.wait_for_selector("#model-error:not([hidden])", timeout=20_000)
    text = banner.text_content()
    assert "retrain failed" in text.lower()
    assert module in text and "PYTHONPATH" in text
    wait_for_item(page)  # labeling goes on meanwhile
    screenshot(page, "annotate-model-error.png")

    # Once a retrain works again, the banner goes away by itself.
    api.call("PATCH", f"/api/projects/{pid}", {"model": "logreg"})
    api.post(f"/api/projects/{pid}/retrain")
    assert live.app.extensions["assay.retrain"].wait_idle(120)
    page.wait_for_selector("#model-error", state="hidden", timeout=20_000)
    assert page.js_errors == []

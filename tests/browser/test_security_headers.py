"""The pages under their Content-Security-Policy in a real Chromium: they work, and nothing is blocked."""
from __future__ import annotations

import json
import urllib.request

from browser_helpers import wait_for, wait_for_item

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def _as(live_server, annotator, method, path, body=None):
    req = urllib.request.Request(live_server.url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "X-Assay-Annotator": annotator})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def _disputed_project(live_server, sms_data) -> int:
    """Two annotators who disagree on two items, so the review page has buttons to press."""
    api = live_server.api
    pid = api.post("/api/projects", {"name": "csp-review", "labels": ["ham", "spam"], "overlap": 2,
                                     "strategy": "margin"})["id"]
    api.post(f"/api/projects/{pid}/items", [{"text": text} for _, text in sms_data(6)])
    # ann2 answers the very items ann1 answered: which items a queue pull hands out depends on whether
    # the first retrain has landed, and only shared items make disagreements.
    items = [item["id"] for item in _as(live_server, "ann1", "GET", f"/api/projects/{pid}/queue?n=2")]
    for annotator, label in (("ann1", "ham"), ("ann2", "spam")):
        for item_id in items:
            _as(live_server, annotator, "POST", f"/api/projects/{pid}/annotations", {"item_id": item_id, "label": label})
    return pid


def test_pages_work_under_the_csp_with_no_violations(page, live_server, sms_project, sms_data):
    console = []
    page.on("console", lambda msg: console.append(f"{msg.text} at {msg.location}"))
    page.add_init_script(RECORD_VIOLATIONS)
    url, pid = live_server.url, sms_project.id

    def visit(path):
        response = page.goto(url + path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        assert response.headers["x-frame-options"] == "DENY"

    # Labeling by keyboard still works: annotate.js and its JSON config block load.
    visit(f"/projects/{pid}/annotate")
    item = wait_for_item(page)
    for key in ("1", "2", "1", "1"):
        page.keyboard.press(key)
        item = wait_for_item(page, not_id=item["id"])
    wait_for(lambda: live_server.api.get(f"/api/projects/{pid}/stats")["labeled"] == 4, what="4 labels")

    # The progress bars take their width from data-percent (4 of 40 = 10%), with no style= attribute.
    visit("/")
    row = page.locator("tr", has=page.locator(f'a[href="/projects/{pid}"]'))
    page.wait_for_function("(bar) => bar.getBoundingClientRect().width > 0",
                           arg=row.locator(".bar-fill").element_handle())
    visit(f"/projects/{pid}")
    big = "document.querySelector('#live .bar.big .bar-fill')"
    # Functions, not bare expressions: Playwright polls a bare expression with eval(), which the CSP refuses
    # (the wait fails whenever the first check, made outside the page's CSP, comes too early: on a loaded machine).
    page.wait_for_function(f"() => {big}.getBoundingClientRect().width > 0")
    assert page.evaluate("document.getElementById('curve').complete && document.getElementById('curve').naturalWidth > 0")
    # The live part is swapped in by overview.js; its new bars get their widths too.
    page.evaluate("""async () => {
      const live = document.getElementById("live");
      live.innerHTML = await (await fetch(live.dataset.url)).text();
    }""")
    assert page.evaluate(f"{big}.style.width") == "10%"

    # The review page's buttons record a final label through review.js.
    review_pid = _disputed_project(live_server, sms_data)
    visit(f"/projects/{review_pid}/review")
    page.locator(".review-item").first.locator('button[data-label="spam"]').click()
    page.wait_for_function(
        "() => document.querySelector('.review-item .review-status').textContent.includes('adjudicated')")

    violations = page.evaluate("window.__cspViolations")
    assert violations == [], violations
    csp_messages = [m for m in console if "Content Security Policy" in m]
    assert csp_messages == [], "\n".join(csp_messages)
    assert page.js_errors == []

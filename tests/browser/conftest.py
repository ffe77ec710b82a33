"""A live Assay server in a thread and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import csv
import os
from types import SimpleNamespace

import pytest
from browser_helpers import serve

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"
# The SMS Spam Collection as shipped for the demo (the tests read only data in the repository).
SMS_FILE = os.path.join(REPO, "server", "demo", "sms_spam.tsv")
ARTIFACTS = os.path.join(REPO, "test-artifacts")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)
            if not os.path.exists(CHROMIUM):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """Accounts off, as on a local single-user install; webhooks may reach the tests' receivers on loopback."""
    with serve(tmp_path_factory.mktemp("browser"), WEBHOOK_HOSTS="127.0.0.1") as live:
        yield live


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    """Accounts on: every page wants a login, every change a CSRF token."""
    with serve(tmp_path_factory.mktemp("browser-auth"), AUTH=True) as live:
        yield live


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


def sms_rows(n: int) -> list[tuple[str, str]]:
    """The first n distinct messages of the SMS Spam Collection (it repeats some): (label, text)."""
    with open(SMS_FILE, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        out: dict[str, str] = {}
        for label, text in reader:
            out.setdefault(text, label)
            if len(out) == n:
                return [(label, text) for text, label in out.items()]
    raise AssertionError(f"the SMS file has fewer than {n} distinct messages")


@pytest.fixture
def sms_data():
    return sms_rows


_counter = iter(range(1, 10_000))


@pytest.fixture
def sms_project(live_server):
    """A fresh project with 40 SMS messages uploaded as the file's own TSV lines, left unlabeled."""
    api = live_server.api
    pid = api.post("/api/projects", {"name": f"sms-{next(_counter)}", "labels": ["ham", "spam"],
                                     "strategy": "margin"})["id"]
    rows = sms_rows(40)
    tsv = "Label\tSMS\n" + "".join(f"{label}\t{text}\n" for label, text in rows)
    result = api.post(f"/api/projects/{pid}/items?text_column=SMS&label_column=none", data=tsv.encode(),
                      content_type="text/tab-separated-values")
    assert result == {"imported": 40, "skipped": 0}
    return SimpleNamespace(id=pid, texts=[text for _, text in rows])


@pytest.fixture
def screenshot():
    """save(page, name): a full-page PNG in test-artifacts/ (git-ignored), for people to look at."""
    def save(page, name: str) -> str:
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name)
        page.screenshot(path=path, full_page=True)
        return path

    return save

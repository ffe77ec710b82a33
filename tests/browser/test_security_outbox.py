"""Unsent answers belong to the user who made them: another login on the same browser never sends them."""
from __future__ import annotations

from browser_helpers import wait_for, wait_for_item

from assay.web import auth
from assay.domain import projects
from assay import store

OUTBOXES = """() => Object.keys(localStorage).filter((k) => k.startsWith('assay-outbox'))
                 .map((k) => [k, JSON.parse(localStorage.getItem(k)).length])"""


def _setup(db, name: str, users: tuple[str, ...]) -> int:
    pid = projects.create(db, {"name": name, "labels": ["ham", "spam"], "strategy": "margin"})
    store.insert_items(db, pid, [(f"{name}{i}", {"text": f"{name} message {i}"}, None) for i in range(16)])
    for user in users:
        store.grant(db, store.create_user(db, user, auth.hash_password(f"pw-{user}")), pid, "annotator")
    return pid


def _login(page, server, name: str, pid: int) -> dict:
    page.goto(f"{server.url}/login?next=/projects/{pid}/annotate")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", f"pw-{name}")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.text_content(".whoami span") == name
    return wait_for_item(page)


def _queue_three_unsent(page, first: dict) -> None:
    """Answer three items while every answer fails to arrive: they wait in the outbox."""
    page.route("**/annotations", lambda route: route.abort("internetdisconnected"))
    shown = first
    for key in ("1", "2", "1"):
        page.keyboard.press(key)
        shown = wait_for_item(page, not_id=shown["id"])
    page.wait_for_selector("#outbox:not([hidden])")


def _answers(db, pid: int, name: str) -> list[int]:
    return [r[0] for r in db.reader.execute(
        "SELECT item_id FROM annotations WHERE project_id = ? AND annotator = ? AND undone_at IS NULL ORDER BY id",
        (pid, name))]


def _label_one_and_wait(page, db, pid: int, name: str) -> int:
    """One answer by the page's user, waited for on the server. The outbox sends in order, so anything
    queued before it (someone else's answers, had the page picked them up) is on the server by then."""
    item = wait_for_item(page)
    page.keyboard.press("2")
    wait_for(lambda: _answers(db, pid, name), what=f"an answer by {name}")
    return int(item["id"])


def test_logout_drops_unsent_answers_and_the_next_login_never_sends_them(page, auth_server):
    db = auth_server.app.extensions["assay.db"]
    pid = _setup(db, "sec-logout", ("sec-ann", "sec-bea"))
    first = _login(page, auth_server, "sec-ann", pid)
    _queue_three_unsent(page, first)
    assert [n for _, n in page.evaluate(OUTBOXES)] == [3]

    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_navigation():
        page.click(".whoami button[type=submit]")
    assert "/login" in page.url
    page.unroute("**/annotations")

    _login(page, auth_server, "sec-bea", pid)
    own = _label_one_and_wait(page, db, pid, "sec-bea")
    assert _answers(db, pid, "sec-bea") == [own]  # none of sec-ann's answers went out as sec-bea
    assert _answers(db, pid, "sec-ann") == []  # and they were dropped at logout, not sent later
    # The server has the answer; the page clears it from its outbox when the response arrives.
    wait_for(lambda: page.evaluate(OUTBOXES) == [], what="sec-bea's outbox to empty")
    assert dialogs and "3 answers are not sent yet" in dialogs[0]  # logging out asked before dropping them
    assert page.js_errors == []


def test_answers_left_by_an_expired_login_wait_for_their_own_user(page, auth_server):
    db = auth_server.app.extensions["assay.db"]
    pid = _setup(db, "sec-expired", ("sec-cid", "sec-dee"))
    first = _login(page, auth_server, "sec-cid", pid)
    _queue_three_unsent(page, first)
    page.context.clear_cookies()  # the login runs out with the answers still unsent
    page.unroute("**/annotations")

    _login(page, auth_server, "sec-dee", pid)
    own = _label_one_and_wait(page, db, pid, "sec-dee")
    assert _answers(db, pid, "sec-dee") == [own]  # the other user's answers never went out under this login
    assert _answers(db, pid, "sec-cid") == []
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click(".whoami button[type=submit]")

    # Their owner logs in again: the kept answers go out, under their own name, once.
    _login(page, auth_server, "sec-cid", pid)
    wait_for(lambda: len(_answers(db, pid, "sec-cid")) == 3, what="sec-cid's three kept answers")
    page.wait_for_selector("#outbox", state="hidden")
    assert page.evaluate(OUTBOXES) == []
    assert len(_answers(db, pid, "sec-dee")) == 1
    assert page.js_errors == []


def _leave_legacy_outbox(page, server, pid: int, item_id: int) -> None:
    """What the page before per-user outboxes left behind: one answer under the per-project key."""
    page.goto(f"{server.url}/login")  # any page of the site, for its localStorage
    op = {"kind": "answer", "item_id": item_id,
          "body": {"item_id": item_id, "label": "spam", "idempotency_key": f"legacy-{pid}", "duration_ms": 5}}
    page.evaluate("([key, ops]) => localStorage.setItem(key, JSON.stringify(ops))", [f"assay-outbox-{pid}", [op]])


def test_an_outbox_from_before_the_upgrade_is_dropped_when_nobody_can_tell_whose_it_is(page, auth_server):
    db = auth_server.app.extensions["assay.db"]
    pid = _setup(db, "sec-legacy", ("sec-eve",))
    item_id = store.all_item_ids(db.reader, pid)[-1]
    _leave_legacy_outbox(page, auth_server, pid, item_id)
    _login(page, auth_server, "sec-eve", pid)
    own = _label_one_and_wait(page, db, pid, "sec-eve")
    assert _answers(db, pid, "sec-eve") == [own]
    legacy = db.reader.execute("SELECT count(*) FROM annotations WHERE idempotency_key = ?", (f"legacy-{pid}",))
    assert legacy.fetchone()[0] == 0  # nobody can tell whose it was: it is not sent as sec-eve
    wait_for(lambda: page.evaluate(OUTBOXES) == [], what="sec-eve's outbox to empty")


def test_without_accounts_an_outbox_from_before_the_upgrade_is_still_sent(page, live_server):
    db = live_server.app.extensions["assay.db"]
    pid = projects.create(db, {"name": "sec-legacy-local", "labels": ["ham", "spam"], "strategy": "margin"})
    store.insert_items(db, pid, [(f"l{i}", {"text": f"local message {i}"}, None) for i in range(6)])
    item_id = store.all_item_ids(db.reader, pid)[-1]
    _leave_legacy_outbox(page, live_server, pid, item_id)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    wait_for(lambda: _answers(db, pid, "local") == [item_id], what="the legacy answer, sent as local")
    page.wait_for_function("() => !Object.keys(localStorage).some((k) => k.startsWith('assay-outbox'))")
    assert page.js_errors == []

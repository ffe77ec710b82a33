"""Webhooks: registration (owner only), signed deliveries of every event, retries with backoff, delivery after
a restart, the host policy (SSRF), and that no request waits for a receiver."""
from __future__ import annotations

import json
import time

import pytest

from assay import close_app, create_app, services, store
from assay.learning.records import ModelVersion
from assay.webhooks import policy
from assay.webhooks.sender import backoff_delay
from tests.webhook_receiver import Receiver, free_port, signed_by

SECRET = "a-secret-of-twenty-chars"
ITEMS = [{"id": f"m{i}", "text": f"message number {i}"} for i in range(6)]


def _app(tmp_path, **config):
    # The receivers here listen on loopback, which webhooks reach only when the operator lists it.
    return create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "SEED": 0,
                       "RETRAIN_TIMEOUT": 120.0, "WEBHOOK_BACKOFF": 0.2, "WEBHOOK_HOSTS": "127.0.0.1", **config})


@pytest.fixture
def app(tmp_path):
    """The shared fixture's app, with quick retries."""
    app = _app(tmp_path)
    yield app
    close_app(app)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _hook(client, pid, url, events=("annotation.created",), secret=SECRET, **headers):
    return client.post(f"/api/projects/{pid}/webhooks", json={"url": url, "events": list(events), "secret": secret},
                       headers=headers)


def _label(client, pid, label="ham", **headers):
    item = client.get(f"/api/projects/{pid}/queue?n=1", headers=headers).json[0]
    r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": label}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def _log(client, pid):
    return client.get(f"/api/projects/{pid}/webhooks/deliveries").json


def _wait_for_log(client, pid, done, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        log = _log(client, pid)
        if done(log):
            return log
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


@pytest.fixture
def project(client, make_project):
    pid = make_project()
    assert client.post(f"/api/projects/{pid}/items", json=ITEMS).status_code == 200
    return pid


# -- registration -------------------------------------------------------------------------------------------

def test_a_webhook_is_registered_listed_and_deleted_and_its_secret_never_shown(client, project, receiver):
    r = _hook(client, project, receiver.url, events=["annotation.created", "model.trained"])
    assert r.status_code == 201 and isinstance(r.json["id"], int)
    assert r.json["events"] == ["annotation.created", "model.trained"] and "secret" not in r.json
    listed = client.get(f"/api/projects/{project}/webhooks")
    assert [h["id"] for h in listed.json] == [r.json["id"]] and listed.json[0]["url"] == receiver.url
    assert SECRET not in listed.get_data(as_text=True)
    # Left out, the server makes a secret up and shows it this once.
    made = _hook(client, project, receiver.url, secret=None)
    assert made.status_code == 201 and len(made.json["secret"]) >= 32
    assert made.json["secret"] not in client.get(f"/api/projects/{project}/webhooks").get_data(as_text=True)
    assert client.delete(f"/api/projects/{project}/webhooks/{r.json['id']}").status_code == 200
    assert [h["id"] for h in client.get(f"/api/projects/{project}/webhooks").json] == [made.json["id"]]
    assert client.delete(f"/api/projects/{project}/webhooks/{r.json['id']}").status_code == 404


@pytest.mark.parametrize("body, words", [
    ({"url": "ftp://127.0.0.1/x", "events": ["annotation.created"]}, "http:// or https://"),
    ({"url": "http://127.0.0.1/x", "events": []}, "events must be"),
    ({"url": "http://127.0.0.1/x", "events": ["item.created"]}, "events must be"),
    ({"url": "http://127.0.0.1/x", "events": ["model.failed"], "secret": "short"}, "16-256 characters"),
    ({"url": "http://user:pw@127.0.0.1/x", "events": ["model.failed"]}, "user name or password"),
])
def test_a_bad_registration_is_a_400_that_says_what_to_fix(client, project, body, words):
    r = client.post(f"/api/projects/{project}/webhooks", json=body)
    assert r.status_code == 400 and words in r.json["error"]
    assert client.get(f"/api/projects/{project}/webhooks").json == []


def test_only_an_owner_manages_webhooks_with_accounts_on(app, client, project, receiver):
    from assay.web import auth

    app.config["AUTH"] = True
    db = app.extensions["assay.db"]
    headers = {}
    for name, role in (("olive", "owner"), ("ann", "annotator"), ("rev", "reviewer")):
        uid = store.create_user(db, name, None)
        store.grant(db, uid, project, role)
        token = auth.new_token()
        store.add_token(db, uid, auth.hash_token(token), token[:12])
        headers[name] = {"Authorization": f"Bearer {token}"}
    for name in ("ann", "rev"):
        assert _hook(client, project, receiver.url, **headers[name]).status_code == 403
        assert client.get(f"/api/projects/{project}/webhooks", headers=headers[name]).status_code == 403
        assert client.get(f"/api/projects/{project}/webhooks/deliveries", headers=headers[name]).status_code == 403
    r = _hook(client, project, receiver.url, **headers["olive"])
    assert r.status_code == 201
    assert r.json["created_by"] == "olive"
    assert client.delete(f"/api/projects/{project}/webhooks/{r.json['id']}", headers=headers["ann"]).status_code == 403
    assert client.delete(f"/api/projects/{project}/webhooks/{r.json['id']}",
                         headers=headers["olive"]).status_code == 200


# -- the events ---------------------------------------------------------------------------------------------

def test_an_annotation_arrives_signed_with_its_event_and_once_per_answer(client, project, receiver):
    hook = _hook(client, project, receiver.url).json
    answer = _label(client, project, "spam")
    request = receiver.wait_for(1)[0]
    assert signed_by(request, SECRET) and not signed_by(request, SECRET + "x")
    body = json.loads(request["body"])
    assert body["event"] == "annotation.created" and body["project_id"] == project
    assert request["headers"]["X-Assay-Event"] == "annotation.created"
    assert request["headers"]["X-Assay-Delivery"] == body["delivery_id"]
    assert body["timestamp"].endswith("Z")
    data = body["data"]
    assert (data["id"], data["item_id"], data["label"], data["annotator"], data["skipped"]) == (
        answer["id"], answer["item_id"], "spam", "local", False)
    assert data["item_external_id"] in {i["id"] for i in ITEMS}
    log = _wait_for_log(client, project, lambda log: log and log[0]["state"] == "delivered")
    assert log[0]["delivery_id"] == body["delivery_id"] and log[0]["hook_id"] == hook["id"]
    assert [(a["attempt"], a["status_code"], a["error"]) for a in log[0]["log"]] == [(1, 200, None)]
    # A retried request (same idempotency key) stores nothing new, and posts nothing new.
    item = client.get(f"/api/projects/{project}/queue?n=1").json[0]["id"]
    for _ in range(2):
        client.post(f"/api/projects/{project}/annotations", json={"item_id": item, "skip": True,
                                                                  "idempotency_key": "k1"})
    skipped = receiver.wait_for(2)[1]
    time.sleep(0.3)
    assert len(receiver.received) == 2 and json.loads(skipped["body"])["data"]["skipped"] is True


def test_a_webhook_gets_only_the_events_it_asked_for(client, project, receiver):
    _hook(client, project, receiver.url, events=["model.trained"])
    _label(client, project)
    time.sleep(0.5)
    assert receiver.received == [] and _log(client, project) == []


def test_model_versions_post_trained_failed_and_the_stop_signal_when_it_turns_on(app, client, project, receiver):
    """Through the retrain service's own recording step (the transaction that records a version)."""
    _hook(client, project, receiver.url, events=["model.trained", "model.failed", "project.stop_signal"])
    service = app.extensions["assay.retrain"]

    def version(status, n, stop=None, **fields):
        service._record(project, [], ModelVersion(status, "logreg", "margin", n_labels=n, stop_signal=stop,
                                                  **fields).as_row())

    version("cold_start", 0)
    version("ok", 10, 0, accuracy=0.7, estimate=0.72, estimate_low=0.6, estimate_high=0.8)
    version("ok", 20, 1, kappa=0.97, evaluation={"stopping": {"threshold": 0.95, "settled": True}})
    version("ok", 30, 1)  # still on: no second signal
    version("failed", 30, error="RuntimeError: this model always fails to fit")
    version("ok", 40, 0)
    version("ok", 50, 1, kappa=0.99)  # on again
    got = receiver.wait_for(8)
    assert all(signed_by(r, SECRET) for r in got)
    bodies = [json.loads(r["body"]) for r in got]
    seen = [(b["event"], b["data"]["version"]) for b in bodies]
    assert seen == [("model.trained", 2), ("model.trained", 3), ("project.stop_signal", 3), ("model.trained", 4),
                    ("model.failed", 5), ("model.trained", 6), ("model.trained", 7), ("project.stop_signal", 7)]
    trained = bodies[0]["data"]
    assert (trained["status"], trained["n_labels"], trained["accuracy"], trained["estimate_low"]) == ("ok", 10, 0.7, 0.6)
    stop = bodies[2]["data"]
    assert (stop["signal"], stop["kappa"], stop["threshold"], stop["n_labels"]) == (True, 0.97, 0.95, 20)
    assert bodies[4]["data"]["error"] == "RuntimeError: this model always fails to fit"
    assert len({b["delivery_id"] for b in bodies}) == 8


def test_a_real_retrain_posts_model_trained_and_a_failing_model_posts_model_failed(tmp_path, receiver):
    app = _app(tmp_path, MODELS="tests.plugin_models:raising")
    try:
        client = app.test_client()
        rows = [{"id": str(i), "text": f"{'win cash now' if i % 2 else 'see you at lunch'} {i}",
                 "label": "spam" if i % 2 else "ham"} for i in range(30)]
        pids = []
        for name, model in (("good", "logreg"), ("bad", "tests.plugin_models:raising")):
            pid = client.post("/api/projects", json={"name": name, "labels": ["ham", "spam"], "model": model,
                                                     "featurizer": "tfidf", "strategy": "margin"}).json["id"]
            _hook(client, pid, receiver.url, events=["model.trained", "model.failed"])
            assert client.post(f"/api/projects/{pid}/items?label_column=label", json=rows).status_code == 200
            pids.append(pid)
        service = app.extensions["assay.retrain"]
        for pid in pids:
            service.retrain_now(pid)
        assert service.wait_idle(180)
        got = {(b["project_id"], b["event"]): b["data"] for b in (json.loads(r["body"]) for r in receiver.wait_for(2))}
        assert set(got) == {(pids[0], "model.trained"), (pids[1], "model.failed")}
        assert got[(pids[0], "model.trained")]["n_labels"] == 30
        assert "always fails" in got[(pids[1], "model.failed")]["error"]
    finally:
        close_app(app)


# -- retries, restarts, shutdown -----------------------------------------------------------------------------

def test_a_failing_receiver_is_retried_with_growing_waits_until_it_answers(client, project):
    receiver = Receiver(answers=[500, 503, 500, 200])
    try:
        _hook(client, project, receiver.url)
        _label(client, project)
        got = receiver.wait_for(4)
        assert len({r["body"] for r in got}) == 1  # the same bytes, the same delivery id, every time
        gaps = [b["at"] - a["at"] for a, b in zip(got, got[1:])]
        # WEBHOOK_BACKOFF is 0.2 s: waits of 0.2, 0.4 and 0.8 s.
        assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8, gaps
        assert gaps[2] > gaps[1] > gaps[0]
        log = _wait_for_log(client, project, lambda log: log[0]["state"] == "delivered")[0]
        assert [(a["attempt"], a["status_code"]) for a in log["log"]] == [(1, 500), (2, 503), (3, 500), (4, 200)]
        assert log["log"][0]["error"].startswith("HTTP 500") and log["log"][-1]["error"] is None
        assert log["attempts"] == 4 and log["next_attempt_at"] is None
    finally:
        receiver.close()


def test_backoff_doubles_up_to_its_cap():
    assert [backoff_delay(n, 1.0, 10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_delivery_is_given_up_after_the_last_attempt(tmp_path):
    receiver = Receiver(answers=[500])
    app = _app(tmp_path, WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_BACKOFF=0.05)
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"name": "p", "labels": ["ham", "spam"]}).json["id"]
        client.post(f"/api/projects/{pid}/items", json=ITEMS)
        _hook(client, pid, receiver.url)
        _label(client, pid)
        log = _wait_for_log(client, pid, lambda log: log and log[0]["state"] == "failed")[0]
        assert log["attempts"] == 3 and [a["status_code"] for a in log["log"]] == [500, 500, 500]
        time.sleep(0.3)
        assert len(receiver.received) == 3
        assert client.get(f"/api/projects/{pid}/webhooks").json[0]["deliveries"] == {
            "pending": 0, "delivered": 0, "failed": 1}
    finally:
        close_app(app)
        receiver.close()


def test_deliveries_pending_at_shutdown_go_out_after_a_restart(tmp_path):
    port = free_port()  # nobody listens yet: every attempt is refused
    app = _app(tmp_path, WEBHOOK_BACKOFF=0.1)
    client = app.test_client()
    pid = client.post("/api/projects", json={"name": "p", "labels": ["ham", "spam"]}).json["id"]
    client.post(f"/api/projects/{pid}/items", json=ITEMS)
    _hook(client, pid, f"http://127.0.0.1:{port}/hook")
    first = _label(client, pid)
    _wait_for_log(client, pid, lambda log: log and log[0]["attempts"] >= 1)
    # This one never gets an attempt: the sender is stopped before it is written.
    app.extensions["assay.webhooks"].shutdown()
    second = _label(client, pid, "spam")
    close_app(app)

    receiver = Receiver(port=port)
    app = _app(tmp_path, WEBHOOK_BACKOFF=0.1)
    try:
        assert not app.extensions["assay.webhooks"].alive()  # building an app starts no thread
        services.start(app)  # as `assay serve` (demo, worker) does when it starts
        got = receiver.wait_for(2)
        answers = sorted(json.loads(r["body"])["data"]["id"] for r in got)
        assert answers == sorted([first["id"], second["id"]])
        assert all(signed_by(r, SECRET) for r in got)
        log = _wait_for_log(app.test_client(), pid, lambda log: all(d["state"] == "delivered" for d in log))
        refused = next(d for d in log if d["log"][0]["status_code"] is None)
        assert "Connection" in refused["log"][0]["error"] or "refused" in refused["log"][0]["error"]
    finally:
        close_app(app)
        receiver.close()


def test_a_slow_receiver_slows_no_request_and_shutdown_cuts_it_off(tmp_path):
    receiver = Receiver(delay=5.0)
    app = _app(tmp_path, WEBHOOK_TIMEOUT=30.0)
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"name": "p", "labels": ["ham", "spam"]}).json["id"]
        client.post(f"/api/projects/{pid}/items", json=ITEMS)
        _hook(client, pid, receiver.url)
        took = []
        for _ in range(4):
            started = time.perf_counter()
            _label(client, pid)
            took.append(time.perf_counter() - started)
        receiver.wait_for(1)  # the first delivery is inside the receiver's 5 s sleep
        assert max(took) < 1.0, took
        sender = app.extensions["assay.webhooks"]
        started = time.perf_counter()
        assert sender.shutdown(10)
        assert time.perf_counter() - started < 2.0
        # The cut-off attempt counts for nothing: all four are still pending, none was given up.
        log = _log(client, pid)
        assert [d["state"] for d in log] == ["pending"] * 4 and all(d["attempts"] == 0 for d in log)
    finally:
        close_app(app)
        receiver.close()


# -- the host policy (SSRF) ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://10.0.0.7/hook", "http://192.168.1.20:8080/hook", "http://[fd00::1]/hook",
                                 "http://169.254.169.254/latest/meta-data"])
def test_a_private_address_is_refused_even_with_any_host_allowed(client, project, url):
    r = _hook(client, project, url)
    assert r.status_code == 400 and "ASSAY_WEBHOOK_HOSTS" in r.json["error"]
    client.application.config["WEBHOOK_ANY_HOST"] = True
    r = _hook(client, project, url)
    assert r.status_code == 400 and ("private" in r.json["error"] or "link-local" in r.json["error"])
    assert client.get(f"/api/projects/{project}/webhooks").json == []


def test_a_host_not_allowed_is_refused_without_asking_dns(client, project, monkeypatch):
    asked = []
    monkeypatch.setattr(policy, "resolve_host", lambda host, port: asked.append(host) or ["93.184.216.34"])
    r = _hook(client, project, "https://hooks.example.com/assay")
    assert r.status_code == 400 and "hooks.example.com:443 is not listed" in r.json["error"]
    assert asked == []
    client.application.config["WEBHOOK_HOSTS"] = "ci.internal, hooks.example.com"
    assert _hook(client, project, "https://hooks.example.com/assay").status_code == 201
    assert asked == ["hooks.example.com"]


def test_names_are_judged_by_every_address_they_resolve_to(client, project, monkeypatch):
    answers = {"ci.internal": ["10.1.2.3"], "sneaky.example.com": ["93.184.216.34", "10.1.2.3"],
               "meta.internal": ["169.254.169.254"], "public.example.com": ["93.184.216.34"]}
    monkeypatch.setattr(policy, "resolve_host", lambda host, port: answers[host])
    client.application.config.update(WEBHOOK_HOSTS=["ci.internal", "meta.internal"], WEBHOOK_ANY_HOST=True)
    assert _hook(client, project, "http://ci.internal/hook").status_code == 201  # listed: private is fine
    r = _hook(client, project, "http://sneaky.example.com/hook")
    assert r.status_code == 400 and "resolves to 10.1.2.3" in r.json["error"]
    r = _hook(client, project, "http://meta.internal/hook")  # listed, but link-local never
    assert r.status_code == 400 and "link-local" in r.json["error"]
    assert _hook(client, project, "http://public.example.com/hook").status_code == 201


def test_the_host_is_checked_again_before_each_attempt(client, project, receiver, monkeypatch):
    """DNS rebinding: a public name at registration that points at the server's own network when posted to."""
    client.application.config["WEBHOOK_ANY_HOST"] = True
    answers = {"rebind.example.com": ["93.184.216.34"]}
    monkeypatch.setattr(policy, "resolve_host", lambda host, port: answers[host])
    assert _hook(client, project, f"http://rebind.example.com:{receiver.port}/hook").status_code == 201
    app = client.application
    app.extensions["assay.webhooks"].policy = policy.HostPolicy.from_config(app.config)
    answers["rebind.example.com"] = ["127.0.0.1"]
    _label(client, project)
    log = _wait_for_log(client, project, lambda log: log and log[0]["attempts"] >= 1)[0]
    assert log["log"][0]["status_code"] is None
    assert log["log"][0]["error"].startswith("refused:") and "127.0.0.1" in log["log"][0]["error"]
    assert receiver.received == []


def test_a_redirect_is_not_followed(client, project):
    elsewhere = Receiver()
    redirecting = Receiver(answers=[302], redirect_to=elsewhere.url)
    try:
        _hook(client, project, redirecting.url)
        _label(client, project)
        log = _wait_for_log(client, project, lambda log: log and log[0]["attempts"] >= 1)[0]
        first = log["log"][0]
        assert first["status_code"] == 302 and "not followed" in first["error"] and elsewhere.url in first["error"]
        assert log["state"] == "pending"  # tried again later, at the same URL
        time.sleep(0.5)
        assert elsewhere.received == [] and len(redirecting.received) >= 1
    finally:
        redirecting.close()
        elsewhere.close()


@pytest.mark.parametrize("text, kind", [("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.2.3.4", "private"),
                                        ("100.64.0.1", "private"), ("fd12::1", "private"),
                                        ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
                                        ("0.0.0.0", "unusable"), ("224.0.0.1", "unusable"),
                                        ("::ffff:10.0.0.1", "private"), ("93.184.216.34", "global")])
def test_address_kinds(text, kind):
    assert policy.kind_of(policy._address(text)) == kind


# -- issue 26: this machine only when listed; what the log shows; a slow receiver delays only its own ---------

def _own_address() -> str | None:
    """This machine's address on its network (not loopback), as the system would send from; None: none."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # UDP: no packet is sent, the system only picks a route
            return sock.getsockname()[0]
        except OSError:
            return None


def test_this_machine_is_refused_unless_the_operator_lists_it(tmp_path, receiver):
    app = _app(tmp_path, WEBHOOK_HOSTS="")
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"name": "p", "labels": ["ham", "spam"]}).json["id"]
        port = receiver.port
        urls = [receiver.url + "/admin/delete-everything?confirm=yes", f"http://localhost:{port}/hook",
                f"http://[::1]:{port}/hook", f"http://0.0.0.0:{port}/hook", f"http://127.1.2.3:{port}/hook",
                f"http://[::ffff:127.0.0.1]:{port}/hook", f"http://[::ffff:7f00:1]:{port}/hook"]
        own = _own_address()
        if own is not None and own != "127.0.0.1":
            urls.append(f"http://{own}:{port}/hook")
        for any_host in (False, True):
            app.config["WEBHOOK_ANY_HOST"] = any_host
            for url in urls:
                r = _hook(client, pid, url)
                assert r.status_code == 400, (url, any_host, r.json)
                if not any_host:
                    assert "ASSAY_WEBHOOK_HOSTS" in r.json["error"]
        assert client.get(f"/api/projects/{pid}/webhooks").json == []
        # Listed on another port only: still refused, and the error says which port is listed.
        other = free_port()
        app.config.update(WEBHOOK_ANY_HOST=False, WEBHOOK_HOSTS=f"127.0.0.1:{other}")
        r = _hook(client, pid, receiver.url)
        assert r.status_code == 400 and f"listed on port {other} only" in r.json["error"]
        app.config["WEBHOOK_HOSTS"] = f"127.0.0.1:{port}"
        assert _hook(client, pid, receiver.url).status_code == 201
        assert receiver.received == []  # registering posts nothing
    finally:
        close_app(app)


def test_the_machines_own_interface_addresses_count_as_this_machine():
    assert policy.on_this_machine(policy._address("127.0.0.1"))
    assert not policy.on_this_machine(policy._address("93.184.216.34"))
    own = _own_address()
    if own is None:
        pytest.skip("no network interface but loopback")
    assert policy.on_this_machine(policy._address(own))
    assert policy.HostPolicy().kind(policy._address(own)) in ("private", policy.THIS_MACHINE)


@pytest.mark.parametrize("entry", ["http://hooks.example.com", "hooks.example.com/x", "host:0", "host:99999",
                                   "[::1", "a b", "user@host", "1:2:3"])
def test_a_malformed_hosts_entry_stops_the_start_saying_what_to_write(tmp_path, entry):
    from assay.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="host:port"):
        _app(tmp_path, WEBHOOK_HOSTS=f"ok.example.com, {entry}")


@pytest.mark.parametrize("entry, host, port", [("Hooks.Example.COM.", "hooks.example.com", None),
                                               ("ci.internal:8080", "ci.internal", 8080),
                                               ("127.0.0.1:9000", "127.0.0.1", 9000), ("::1", "::1", None),
                                               ("[::1]:9000", "::1", 9000), ("[::1]", "::1", None)])
def test_hosts_entries(entry, host, port):
    assert policy.parse_hosts(entry) == {(host, port)}


def _as_public(app, monkeypatch, address="127.0.0.1"):
    """Make the sender judge ``address`` a public one (a public receiver cannot run here): then the loopback
    receiver stands for a public host the operator did not list, reached through WEBHOOK_ANY_HOST."""
    real = policy.HostPolicy.kind
    monkeypatch.setattr(policy.HostPolicy, "kind",
                        staticmethod(lambda a: "global" if str(a) == address else real(a)))
    app.config.update(WEBHOOK_HOSTS="", WEBHOOK_ANY_HOST=True)
    app.extensions["assay.webhooks"].policy = policy.HostPolicy.from_config(app.config)


def test_the_log_shows_an_unlisted_receivers_status_and_reason_but_never_its_answer(client, project, monkeypatch):
    talkative = Receiver(answers=[500], body=b"root:x:0:0 the admin page of an internal service")
    redirecting = Receiver(answers=[302], redirect_to="http://10.9.8.7/internal?token=abc")
    try:
        _as_public(client.application, monkeypatch)
        assert _hook(client, project, talkative.url).status_code == 201
        assert _hook(client, project, redirecting.url).status_code == 201
        _label(client, project)
        log = _wait_for_log(client, project, lambda log: len(log) == 2 and all(d["attempts"] for d in log))
        errors = {d["log"][0]["status_code"]: d["log"][0]["error"] for d in log}
        assert errors[500] == "HTTP 500 Internal Server Error"
        assert "not followed" in errors[302] and "10.9.8.7" not in errors[302] and "token" not in errors[302]
        assert len(talkative.received) >= 1 and len(redirecting.received) >= 1
    finally:
        talkative.close()
        redirecting.close()


def test_the_log_shows_a_listed_receivers_answer(client, project):
    talkative = Receiver(answers=[500], body=b"database is locked, try later")
    try:
        assert _hook(client, project, talkative.url).status_code == 201
        _label(client, project)
        log = _wait_for_log(client, project, lambda log: log and log[0]["attempts"] >= 1)
        assert log[0]["log"][0]["error"] == "HTTP 500 Internal Server Error: database is locked, try later"
    finally:
        talkative.close()


@pytest.mark.parametrize("text, kind", [
    ("64:ff9b::a00:1", "private"), ("64:ff9b::7f00:1", "loopback"), ("64:ff9b::a9fe:a9fe", "link-local"),
    ("64:ff9b::5db8:d822", "global"), ("64:ff9b:1::5db8:d822", "private"),
    ("2002:7f00:1::1", "loopback"), ("2002:a00:1::1", "private"), ("2002:5db8:d822::1", "global"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"), ("::7f00:1", "loopback"), ("::a00:1", "private"),
    ("::ffff:0:7f00:1", "loopback"), ("2600::5efe:7f00:1", "loopback"), ("2600::200:5efe:a00:1", "private"),
    ("::ffff:169.254.169.254", "link-local"), ("2600::1", "global")])
def test_ipv6_forms_that_carry_an_ipv4_address_are_judged_by_it(text, kind):
    assert policy.kind_of(policy._address(text)) == kind


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
                                     "::7f00:1", "2600::5efe:a00:1"])
def test_any_host_does_not_open_private_ranges_through_ipv6_forms(client, project, monkeypatch, address):
    monkeypatch.setattr(policy, "resolve_host", lambda host, port: [address])
    client.application.config["WEBHOOK_ANY_HOST"] = True
    r = _hook(client, project, "http://nat64.example.com/hook")
    assert r.status_code == 400 and f"resolves to {address}" in r.json["error"]
    r = _hook(client, project, f"http://[{address}]/hook")
    assert r.status_code == 400


def test_a_trickling_receiver_is_cut_off_at_the_deadline_and_delays_no_other_project(tmp_path):
    from tests.webhook_receiver import Trickler

    slow, fast = Trickler(every=0.2), Receiver()
    app = _app(tmp_path, WEBHOOK_TIMEOUT=1.5, WEBHOOK_BACKOFF=30.0)
    try:
        client = app.test_client()
        pids = []
        for name in ("slow", "fast"):
            pid = client.post("/api/projects", json={"name": name, "labels": ["ham", "spam"]}).json["id"]
            client.post(f"/api/projects/{pid}/items", json=ITEMS)
            pids.append(pid)
        _hook(client, pids[0], slow.url)
        _hook(client, pids[1], fast.url)
        started = time.monotonic()
        _label(client, pids[0])
        deadline = time.monotonic() + 5
        while not slow.accepted:
            assert time.monotonic() < deadline, "the slow receiver was never posted to"
            time.sleep(0.02)
        _label(client, pids[1])
        fast.wait_for(1, timeout=5)
        assert fast.received[0]["at"] - started < 1.4  # while the slow one still trickles
        # The slow attempt ends at its deadline (1.5 s), though every byte came within a per-read timeout.
        log = _wait_for_log(client, pids[0], lambda log: log and log[0]["attempts"] >= 1, timeout=10)
        attempt = log[0]["log"][0]
        assert attempt["error"].startswith("timed out") and attempt["status_code"] is None
        assert 1400 <= attempt["duration_ms"] < 3000, attempt
        assert log[0]["state"] == "pending"
    finally:
        close_app(app)
        slow.close()
        fast.close()


def test_one_receivers_deliveries_go_one_at_a_time_and_in_order(tmp_path):
    receiver = Receiver(delay=0.05)
    app = _app(tmp_path, WEBHOOK_PARALLEL=4)
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"name": "p", "labels": ["ham", "spam"]}).json["id"]
        client.post(f"/api/projects/{pid}/items", json=ITEMS)
        _hook(client, pid, receiver.url)
        _hook(client, pid, receiver.url.replace("/hook", "/other"))  # the same receiver, another webhook
        made = [_label(client, pid) for _ in range(5)]
        got = receiver.wait_for(10)
        seen = [(r["path"], json.loads(r["body"])["data"]["id"]) for r in got]
        assert seen == [(path, a["id"]) for a in made for path in ("/hook", "/other")]
        starts = [r["at"] for r in got]
        assert all(b - a >= 0.045 for a, b in zip(starts, starts[1:])), "two posts to one receiver overlapped"
    finally:
        close_app(app)
        receiver.close()


def test_a_name_whose_dns_never_answers_ends_the_attempt_at_its_deadline(client, project, monkeypatch):
    """A slow resolver (a black-holed DNS server cannot run here: the resolver is replaced by one that waits)."""
    import threading

    release = threading.Event()
    answers = {"slow.example.com": ["93.184.216.34"]}
    registering = threading.current_thread()

    def resolve(host, port):
        if threading.current_thread() is not registering:
            release.wait(30)  # the sender's lookup: as a DNS server that does not answer
        return answers[host]

    monkeypatch.setattr(policy, "resolve_host", resolve)
    app = client.application
    app.config["WEBHOOK_ANY_HOST"] = True
    sender = app.extensions["assay.webhooks"]
    sender.policy, sender.timeout = policy.HostPolicy.from_config(app.config), 1.0
    try:
        assert _hook(client, project, "http://slow.example.com/hook").status_code == 201
        _label(client, project)
        log = _wait_for_log(client, project, lambda log: log and log[0]["attempts"] >= 1, timeout=10)
        attempt = log[0]["log"][0]
        assert attempt["error"].startswith("timed out resolving") and attempt["duration_ms"] < 2500, attempt
    finally:
        release.set()

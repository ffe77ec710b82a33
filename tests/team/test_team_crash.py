"""SIGKILL mid-stream: every acknowledged label survives, and retries count once.

Ten clients label at full speed while the loop retrains in its worker
process. The server process (and its worker child) is killed with SIGKILL,
not asked to stop, so nothing gets to flush or clean up. The server is then
restarted on the same database file, and every client resends everything it
had sent, acknowledged or not, with the same idempotency keys.
"""
from __future__ import annotations

import http.client
import threading
import time
from collections import Counter

import pytest

N_CLIENTS = 10
# What a client sees when the server dies under it: reset, refused, or a half-read response.
CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, OSError)


class Stream:
    """Clients labeling until the server dies; what each sent and what was acknowledged."""

    def __init__(self, server, project_id: int, annotators: list[str]):
        self.server = server
        self.project_id = project_id
        self.annotators = annotators
        self.lock = threading.Lock()
        self.sent: dict[tuple[str, str], tuple[int, str]] = {}  # (annotator, key) -> (item, label)
        self.acked: dict[tuple[str, str], tuple[int, str]] = {}
        self.cut_off: list[str] = []  # clients whose connection died under them
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _work(self, name: str, round_no: int):
        client = self.server.client(annotator=name)
        path = f"/api/projects/{self.project_id}"
        try:
            while not self.stop.is_set():
                status, items = client.get(f"{path}/queue?n=5", retry=False)
                if status != 200:
                    self.errors.append(f"{name} pull: {status} {items}")
                    return
                for it in items:
                    label = "spam" if it["id"] % 2 else "ham"
                    key = f"{name}:r{round_no}:{it['id']}"
                    with self.lock:
                        self.sent[(name, key)] = (it["id"], label)
                    status, body = client.post(f"{path}/annotations",
                                               {"item_id": it["id"], "label": label, "idempotency_key": key},
                                               retry=False)
                    if status not in (200, 201):
                        self.errors.append(f"{name} label: {status} {body}")
                        return
                    with self.lock:
                        self.acked[(name, key)] = (it["id"], label)
        except CONNECTION_ERRORS:
            with self.lock:
                self.cut_off.append(name)
        except Exception as exc:
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            client.close()

    def start(self, round_no: int):
        self.threads = [threading.Thread(target=self._work, args=(a, round_no), name=a) for a in self.annotators]
        for t in self.threads:
            t.start()

    def join(self, timeout: float = 60):
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a client hung after the server died"

    def n_acked(self) -> int:
        with self.lock:
            return len(self.acked)


def has_worker(server) -> bool:
    return len(server._family()) > 1


def resend_everything(server, stream: Stream) -> Counter:
    """Each annotator resends every submission it made, in order; counts of the response statuses."""
    outcomes: Counter = Counter()
    clients = {a: server.client(annotator=a) for a in stream.annotators}
    for (name, key), (item, label) in sorted(stream.sent.items()):
        status, body = clients[name].post(f"/api/projects/{stream.project_id}/annotations",
                                          {"item_id": item, "label": label, "idempotency_key": key})
        assert status in (200, 201), body
        if (name, key) in stream.acked:
            assert status == 200 and body["duplicate"], f"acknowledged {key} stored again: {status} {body}"
        outcomes[status] += 1
    for c in clients.values():
        c.close()
    return outcomes


def check_store(server, stream: Stream):
    """Every sent submission is stored exactly once, with its label; nothing else is."""
    admin = server.client()
    rows = server.export(admin, stream.project_id, every=True)
    admin.close()
    by_item = Counter(r["item_id"] for r in rows)
    assert max(by_item.values()) == 1, f"items labeled twice: {[i for i, n in by_item.items() if n > 1][:10]}"
    exported = {(r["annotator"], r["item_id"]): r["label"] for r in rows}
    expected = {(name, item): label for (name, _), (item, label) in stream.sent.items()}
    assert exported == expected
    repeated = server.query(
        "SELECT annotator, idempotency_key, count(*) FROM annotations WHERE idempotency_key IS NOT NULL"
        " GROUP BY annotator, idempotency_key HAVING count(*) > 1")
    # The item counters the queue relies on agree with the rows they count.
    drift = server.query(
        "SELECT * FROM (SELECT i.id, i.n_labels, (SELECT count(*) FROM annotations a WHERE a.item_id = i.id"
        " AND a.undone_at IS NULL AND a.skipped = 0) AS n FROM items i) counted WHERE n_labels != n")
    assert repeated == [], f"idempotency keys stored more than once: {repeated[:5]}"
    assert drift == [], f"items whose n_labels disagrees with their annotations: {drift[:5]}"


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_label(assay_server, texts):
    server = assay_server(name="crash")
    admin = server.client()
    # retrain_every 20: retrains keep the worker process busy while labels stream in.
    project_id = server.create_project(admin, "crash", texts(1500), retrain_every=20)
    admin.close()
    stream = Stream(server, project_id, [f"c{k}" for k in range(N_CLIENTS)])

    for round_no in (1, 2):  # kill, restart, label on, kill again: recovery itself must be crash-safe
        before = stream.n_acked()
        stream.start(round_no)
        deadline = time.monotonic() + 40
        while (stream.n_acked() < before + 120 or not has_worker(server)) and time.monotonic() < deadline:
            assert not stream.errors, stream.errors[:5]
            time.sleep(0.02)
        assert stream.n_acked() >= before + 120, f"only {stream.n_acked() - before} labels in 40 s"
        worker_alive = has_worker(server)
        killed = server.kill()
        stream.stop.set()
        stream.join()
        stream.stop.clear()
        assert not stream.errors, stream.errors[:5]
        assert server.proc.returncode == -9
        # Mid-stream: clients were cut off with requests in flight, not stopped politely.
        assert len(stream.cut_off) >= N_CLIENTS // 2, stream.cut_off
        stream.cut_off.clear()
        if worker_alive:
            assert len(killed) >= 2, "the retrain worker was not killed with the server"

        assert server.integrity() == "ok"
        server.start()
        assert server.integrity() == "ok"
        admin = server.client()
        rows = server.export(admin, project_id, every=True)
        stored = {(r["annotator"], r["item_id"]): r["label"] for r in rows}
        lost = [(k, v) for k, v in stream.acked.items() if stored.get((k[0], v[0])) != v[1]]
        assert not lost, f"{len(lost)} acknowledged labels lost by the kill, e.g. {lost[:5]}"

        outcomes = resend_everything(server, stream)
        in_flight = len(stream.sent) - len(stream.acked)
        # Acknowledged ones come back as duplicates; in-flight ones were stored at most once either way.
        assert outcomes[200] >= len(stream.acked) and outcomes[201] <= in_flight, (outcomes, in_flight)
        check_store(server, stream)
        # The resend is idempotent too: all duplicates now.
        assert resend_everything(server, stream) == Counter({200: len(stream.sent)})
        print(f"round {round_no}: killed pids {killed} (worker alive: {worker_alive}); {len(stream.acked)} "
              f"acknowledged, {in_flight} in flight, of which {outcomes[201]} were not yet stored")
        stream.acked.update(stream.sent)  # everything is stored now

        # The restarted server serves on: stats answer and the queue hands out unlabeled items.
        status, stats = admin.get(f"/api/projects/{project_id}/stats")
        assert status == 200 and stats["labeled"] == len(stream.sent), stats
        status, items = server.client(annotator="after").get(f"/api/projects/{project_id}/queue?n=5")
        labeled = {item for item, _ in stream.sent.values()}
        assert status == 200 and len(items) == 5 and not {i["id"] for i in items} & labeled
        admin.close()
    print(f"{len(stream.sent)} labels sent across two SIGKILLs, none lost or doubled")

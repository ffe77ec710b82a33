"""Speed and memory of the small-budget strategies (issue 11): coreset, typiclust, probcover, badge.

    python benchmarks/small_budget.py            # N=100,000, D=384: about a minute or two
    python benchmarks/small_budget.py --quick    # small sizes, a smoke run

Full sizes: N=100,000 pool items with D=384 float32 embeddings (a sentence
encoder's output), L=20 labeled items, a batch of B=100, C=10 classes for
BADGE. The embeddings are a mixture of 50 Gaussian blobs, so clusters and
neighbourhoods mean something. Aim: each under 5 s.

Times are medians of up to 3 calls after a warm-up; peak memory is the extra
memory at the peak of one call (tracemalloc and RSS high-water mark, the
larger shown). Next to each, scikit-activeml 1.0's version on a smaller pool
(N=--peer-n, default 3,000: its ProbCover builds an N x N distance matrix),
with our time on that same pool and the ratio ours / theirs.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_repo_to_path, fmt_bytes, fmt_ratio, fmt_seconds, machine_line, median_time, peak_memory, version_of,
)

add_repo_to_path()

import numpy as np  # noqa: E402

from assay.strategies import small_budget as sb  # noqa: E402

SECONDS_AIM = 5.0


def make_inputs(n, d, n_labeled, n_classes, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, d)).astype(np.float32)
    which = rng.integers(0, 50, n + n_labeled)
    X = centres[which] + 0.5 * rng.standard_normal((n + n_labeled, d)).astype(np.float32)
    logits = rng.standard_normal((n, n_classes)) * 2
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return X[:n], X[n:], probs


def ours(name, pool, labeled, probs, batch):
    if name == "coreset":
        return lambda: sb.coreset(pool, batch, labeled, random_state=0)
    if name == "typiclust":
        return lambda: sb.typiclust(pool, batch, labeled, random_state=0)
    if name == "probcover":
        return lambda: sb.probcover(pool, batch, labeled, random_state=0)
    if name == "probcover exact":
        return lambda: sb.probcover(pool, batch, labeled, candidates=None, random_state=0)
    if name == "badge":
        return lambda: sb.badge(probs, pool, batch, random_state=0)
    raise KeyError(name)


def theirs(name, pool, labeled, probs, batch):
    """scikit-activeml's query on the same data, or None when it is not installed."""
    try:
        import skactiveml.pool as skpool
    except ImportError:
        return None
    X = np.vstack([pool, labeled]).astype(np.float64)
    y = np.full(len(X), np.nan)
    y[len(pool):] = 0
    if name == "coreset":
        return lambda: skpool.CoreSet(random_state=0).query(X, y, batch_size=batch)
    if name == "typiclust":
        return lambda: skpool.TypiClust(random_state=0, k=20, cluster_algo_dict={"n_init": 1}) \
            .query(X, y, batch_size=batch)
    if name.startswith("probcover"):
        delta = sb.default_delta(pool, random_state=0)
        return lambda: skpool.ProbCover(deltas=[delta], random_state=0).query(X, y, batch_size=batch)
    if name == "badge":
        # Badge wants a classifier; this one hands back our fixed probabilities for the pool.
        from skactiveml.base import SkactivemlClassifier

        class Fixed(SkactivemlClassifier):
            def __init__(self):
                super().__init__(classes=list(range(probs.shape[1])))

            def fit(self, X, y, sample_weight=None):
                self._validate_data(X, y)
                return self

            def predict_proba(self, X):
                return probs

        return lambda: skpool.Badge(random_state=0).query(X[:len(pool)], y[:len(pool)], Fixed(),
                                                          batch_size=batch)
    raise KeyError(name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--labeled", type=int, default=20)
    ap.add_argument("--peer-n", type=int, default=3_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="coreset,typiclust,probcover,probcover exact,badge")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.d, args.batch, args.peer_n = 3_000, 32, 10, 500
    warnings.simplefilter("ignore")
    print(machine_line())
    print(f"versions: numpy {np.__version__}, scikit-learn {version_of('scikit-learn', 'sklearn')}, "
          f"scikit-activeml {version_of('scikit-activeml', 'skactiveml') or 'not installed'}")
    print(f"N={args.n:,} D={args.d} L={args.labeled} B={args.batch} C=10 float32 embeddings; "
          f"peer comparison at N={args.peer_n:,}")
    pool, labeled, probs = make_inputs(args.n, args.d, args.labeled, 10, args.seed)
    small = make_inputs(args.peer_n, args.d, args.labeled, 10, args.seed + 1)
    header = f"{'strategy':16s} {'time':>9s} {'peak mem':>10s} {'aim':>5s}   " \
             f"{'ours@peer-n':>11s} {'skactiveml':>11s} {'ratio':>8s}"
    print(header)
    for name in [s.strip() for s in args.only.split(",") if s.strip()]:
        if name == "probcover exact" and args.n > 20_000 and not args.quick:
            # O(N^2 D): about 4 TFLOP at 100k x 384; measured once, no repeats.
            mem = peak_memory(ours(name, pool, labeled, probs, args.batch))
            t = mem.seconds
        else:
            mem = peak_memory(ours(name, pool, labeled, probs, args.batch))
            t = median_time(ours(name, pool, labeled, probs, args.batch), repeats=3, budget_seconds=30,
                            warm_up=(mem.seconds, mem.result)).median
        peak = mem.worst
        ok = "PASS" if t <= SECONDS_AIM else "MISS"
        fn = theirs(name, *small, args.batch)
        if fn is None:
            print(f"{name:16s} {fmt_seconds(t):>9s} {fmt_bytes(peak):>10s} {ok:>5s}   not installed")
            continue
        t_ours = median_time(ours(name, *small, args.batch), repeats=3, budget_seconds=20).median
        t_theirs = median_time(fn, repeats=1, budget_seconds=60).median
        print(f"{name:16s} {fmt_seconds(t):>9s} {fmt_bytes(peak):>10s} {ok:>5s}   "
              f"{fmt_seconds(t_ours):>11s} {fmt_seconds(t_theirs):>11s} {fmt_ratio(t_ours / t_theirs):>8s}")


if __name__ == "__main__":
    main()

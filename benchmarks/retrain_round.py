"""One retrain round at 1k labels on a 100k pool, features cached (issue 11): fit + acquisition.

    python benchmarks/retrain_round.py            # N=100,000, D=384, 1,000 labels: about a minute
    python benchmarks/retrain_round.py --quick    # small sizes, a smoke run

What the retrain worker does after featurizing, with the features already in memory (the
feature cache): ``assay.learning.acquire.run_round`` with the default model (``logreg``, the
prior chosen by cross-validation) and the default strategy, ranking a queue of 500 (the server's
depth), for 4 classes (a topic set) and 150 (an intent set). Aim: under 2 s. A third row shows
default's first phase (150 classes, 375 labels: fewer than 3 per class, so TypiClust runs), whose
own aim is item 3's 5 s for a small-budget strategy on this pool.

Next to it, in the same run on the same arrays, what a notebook would do: scikit-learn's
LogisticRegression (C=1, lbfgs) and modAL's ``margin_sampling`` for the batch; and the fit alone
four ways, to show what learning the prior costs: ``l2="auto"`` from scratch (a project's first
retrain) and as every later retrain runs it (``l2_previous``, the prior the retrain 10 labels
earlier chose), against a fixed ``l2=1`` (the old default) and a fixed prior at the value auto
chose (issue 11's budget: at most 3x a fit).
Embeddings are unit-norm rows drawn around class centres (what a sentence encoder gives), with
labels from the nearest centre plus 10% noise.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    NOT_INSTALLED, add_repo_to_path, fmt_ratio, fmt_seconds, load_line, machine_line, median_time, version_of,
)

add_repo_to_path()

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from assay.learning.acquire import run_round  # noqa: E402
from assay.models import LogisticRegression  # noqa: E402

SECONDS_AIM = 2.0
DEPTH = 500


def make_data(n_pool, n_labeled, dim, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim)).astype(np.float32)
    y = rng.integers(n_classes, size=n_pool + n_labeled)
    X = centres[y] + 1.5 * rng.standard_normal((n_pool + n_labeled, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    noisy = rng.random(len(y)) < 0.1
    y[noisy] = rng.integers(n_classes, size=int(noisy.sum()))
    names = np.array([f"class_{c}" for c in y], dtype=object)
    return X[n_labeled:], X[:n_labeled], names[:n_labeled]


def ours(X_pool, X_labeled, y_labeled, batch):
    return run_round(model_spec="logreg", model_params={}, strategy_name="default", strategy_params=None,
                     X_labeled=X_labeled, y_labeled=list(y_labeled), X_pool=X_pool, batch_size=batch,
                     random_state=0, depth=DEPTH)


def notebook(X_pool, X_labeled, y_labeled, batch):
    from modAL.uncertainty import margin_sampling
    from sklearn.linear_model import LogisticRegression as SkLogReg

    model = SkLogReg(C=1.0, max_iter=1000).fit(X_labeled, y_labeled)
    return margin_sampling(model, X_pool, n_instances=batch)


def phase(labels: int, n_classes: int) -> str:
    """Which of default's phases runs with these labels over n_classes seen classes."""
    from assay.strategies.registry import DEFAULT_SWITCH_PER_CLASS
    return "default: typiclust" if labels < DEFAULT_SWITCH_PER_CLASS * n_classes else "default: margin"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pool", type=int, default=None)
    parser.add_argument("--labels", type=int, default=None)
    args = parser.parse_args(argv)
    n_pool = args.pool or (5_000 if args.quick else 100_000)
    n_labeled = args.labels or (200 if args.quick else 1_000)
    dim, batch = 384, 10
    print(machine_line())
    print(load_line())
    have_modal = version_of("modAL-python", "modAL") is not None
    print(f"pool {n_pool:,} x {dim} float32, batch {batch}, queue depth {DEPTH}; "
          f"modAL {version_of('modAL-python', 'modAL') or NOT_INSTALLED}")
    print()
    print("| classes, labels | Assay round (fit + default strategy + queue) | fit l2=auto | fit l2=auto, a retrain | "
          "fit l2=1 (old) | fit l2=chosen | auto / l2=1 | auto / chosen | retrain / chosen | "
          "sklearn C=1 + modAL margin | Assay / notebook |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    # The last row is default's first phase: 150 classes with fewer than 3 labels each runs TypiClust.
    for n_classes, labels in ((4, n_labeled), (150, n_labeled), (150, min(n_labeled, 375))):
        X_pool, X_labeled, y_labeled = make_data(n_pool, labels, dim, n_classes)
        # One BLAS thread, as the retrain worker runs (and as it leaves a core to the web server).
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            round_t = median_time(lambda: ours(X_pool, X_labeled, y_labeled, batch), repeats=3)
            auto = median_time(lambda: LogisticRegression(random_state=0).fit(X_labeled, y_labeled), repeats=3)
            chosen_l2 = auto.result.l2_
            # Every retrain but a project's first starts from the prior the last one chose (l2_previous):
            # the search starts there and the result is smoothed towards it.
            before = LogisticRegression(random_state=0).fit(X_labeled[:-batch], y_labeled[:-batch]).l2_
            retrain = median_time(lambda: LogisticRegression(random_state=0, l2_previous=before)
                                  .fit(X_labeled, y_labeled), repeats=3)
            old = median_time(lambda: LogisticRegression(l2=1.0).fit(X_labeled, y_labeled), repeats=3)
            same = median_time(lambda: LogisticRegression(l2=chosen_l2, intercept_scaling=auto.result.intercept_scaling_)
                               .fit(X_labeled, y_labeled), repeats=3)
            peer = median_time(lambda: notebook(X_pool, X_labeled, y_labeled, batch), repeats=3) if have_modal else None
        if labels == n_labeled:  # the aim is for a round at 1k labels; the first phase's row is shown beside it
            worst = max(worst, round_t.median)
        print(f"| {n_classes}, {labels:,} | {fmt_seconds(round_t.median)} ({phase(labels, len(set(y_labeled)))}) | "
              f"{fmt_seconds(auto.median)} (l2={chosen_l2:.3g}) | {fmt_seconds(retrain.median)} | "
              f"{fmt_seconds(old.median)} | {fmt_seconds(same.median)} | {auto.median / old.median:.1f}x | "
              f"{auto.median / same.median:.1f}x | {retrain.median / same.median:.1f}x | "
              f"{fmt_seconds(peer.median) if peer else NOT_INSTALLED} | "
              f"{fmt_ratio(round_t.median / peer.median) if peer else '-'} |")
    print()
    verdict = "within" if worst < SECONDS_AIM else "OVER"
    print(f"slowest round at {n_labeled:,} labels {fmt_seconds(worst)}: {verdict} the {SECONDS_AIM:g} s aim")


if __name__ == "__main__":
    main()

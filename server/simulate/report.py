"""What a simulation writes: ``curves.csv``, ``summary.csv``, a printed table and ``curves.png``.

Summary figures, per strategy, over the seeds:

* accuracy (and macro-F1) at the budget, mean ± std;
* the area under the learning curve, normalized by the label range it spans
  (trapezoids over n_labels), so it reads as the mean accuracy along the way;
* the labels the mean curve needs to reach 95% of the full-data accuracy
  (the same model trained on the whole training split, averaged over seeds),
  "not reached" when it never does within the budget, and the ratio of that to
  random's. When random never reaches it but the strategy does, the ratio is
  only bounded: below (strategy's labels / budget).
"""
from __future__ import annotations

import csv
import math
import os

import numpy as np

from assay import plots, strategies
from . import peers
from .run import CURVE_COLUMNS, Experiment

TARGET_FRACTION = 0.95
SUMMARY_COLUMNS = ("strategy", "seeds", "n_labels", "accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std",
                   "aulc_mean", "aulc_std", "labels_to_95", "seeds_reaching_95", "ratio_to_random", "ratio_note",
                   "fit_seconds_mean", "acquire_seconds_mean", "full_data_accuracy", "target_accuracy",
                   "estimate_coverage", "estimate_mae_past_300", "estimate_width", "stop_labels", "stop_accuracy",
                   "stop_left_on_table", "stop_within_001")
# The estimate's checks (issue 12): interval coverage from this many labels, its error past ESTIMATE_MAE_FROM.
ESTIMATE_COVERAGE_FROM = 100
ESTIMATE_MAE_FROM = 300
BEST_SHOWN = 7  # the palette has 8 colours: random plus this many
LEGEND_ROW_PX = 22  # height of one legend entry at the plots' default font and dpi


def write_curves(rows: list[dict], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_COLUMNS)
        writer.writeheader()
        for row in rows:
            # Peers' rows have no estimate: those columns stay empty.
            writer.writerow({k: _fmt(row.get(k)) for k in CURVE_COLUMNS})


ESTIMATOR_KEYS = ("strategy", "seed", "n_labels", "accuracy")


def write_estimators(rows: list[dict], path: str) -> bool:
    """Every estimator the accuracy estimate computed beside the one it reports (``est_``/``low_``/``high_``
    + name per round), against the test accuracy: how docs/RESULTS.md compares them. False: none."""
    extra = sorted({k for row in rows for k in row if k.startswith(("est_", "low_", "high_"))})
    if not extra:
        return False
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=ESTIMATOR_KEYS + tuple(extra))
        writer.writeheader()
        for row in rows:
            if any(row.get(k) is not None for k in extra):
                writer.writerow({k: _fmt(row.get(k)) for k in ESTIMATOR_KEYS + tuple(extra)})
    return True


def _fmt(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def full_data(experiment: Experiment) -> tuple[float, float]:
    acc = np.array([s.full_accuracy for s in experiment.setups])
    return float(acc.mean()), float(acc.std())


def _curves(rows: list[dict], strategy: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """seed -> (n_labels, accuracy), sorted by n_labels."""
    by_seed: dict[int, list] = {}
    for row in rows:
        if row["strategy"] == strategy:
            by_seed.setdefault(row["seed"], []).append((row["n_labels"], row["accuracy"], row["macro_f1"],
                                                       row["fit_seconds"], row["acquire_seconds"]))
    return {seed: np.array(sorted(points), dtype=float).T for seed, points in sorted(by_seed.items())}


def mean_curve(curves: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_labels, mean, std) of accuracy over seeds, at the label counts every seed reached."""
    common = sorted(set.intersection(*(set(c[0].tolist()) for c in curves.values())))
    stacked = np.array([[c[1][np.searchsorted(c[0], n)] for n in common] for c in curves.values()])
    return np.asarray(common), stacked.mean(axis=0), stacked.std(axis=0)


def aulc(n_labels: np.ndarray, accuracy: np.ndarray) -> float:
    if len(n_labels) < 2 or n_labels[-1] == n_labels[0]:
        return float(accuracy[-1])
    return float(np.trapezoid(accuracy, n_labels) / (n_labels[-1] - n_labels[0]))


def labels_to_reach(n_labels: np.ndarray, accuracy: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(accuracy >= target)
    return int(n_labels[hit[0]]) if len(hit) else None


def summarize(experiment: Experiment) -> list[dict]:
    full_mean, _ = full_data(experiment)
    target = TARGET_FRACTION * full_mean
    per_seed_target = {s.seed: TARGET_FRACTION * s.full_accuracy for s in experiment.setups}
    out = []
    for strategy in experiment.config.strategies:
        curves = _curves(experiment.rows, strategy)
        if not curves:
            continue
        final_acc = np.array([c[1][-1] for c in curves.values()])
        final_f1 = np.array([c[2][-1] for c in curves.values()])
        areas = np.array([aulc(c[0], c[1]) for c in curves.values()])
        n, mean, _ = mean_curve(curves)
        reached = sum(labels_to_reach(c[0], c[1], per_seed_target[seed]) is not None for seed, c in curves.items())
        out.append({
            "strategy": strategy, "seeds": len(curves), "n_labels": int(max(c[0][-1] for c in curves.values())),
            "accuracy_mean": float(final_acc.mean()), "accuracy_std": float(final_acc.std()),
            "macro_f1_mean": float(final_f1.mean()), "macro_f1_std": float(final_f1.std()),
            "aulc_mean": float(areas.mean()), "aulc_std": float(areas.std()),
            "labels_to_95": labels_to_reach(n, mean, target), "seeds_reaching_95": f"{reached}/{len(curves)}",
            "fit_seconds_mean": float(np.mean(np.concatenate([c[3] for c in curves.values()]))),
            # The last row of a run acquires nothing; leave it out of the per-round cost.
            "acquire_seconds_mean": float(np.mean(np.concatenate([c[4][:-1] if len(c[4]) > 1 else c[4]
                                                                  for c in curves.values()]))),
            "full_data_accuracy": full_mean, "target_accuracy": target,
            **estimate_summary([r for r in experiment.rows if r["strategy"] == strategy]),
        })
    _add_ratios(out)
    return out


def estimate_summary(rows: list[dict]) -> dict:
    """How the accuracy estimate and the stop signal did against the test accuracy, over a strategy's runs.

    estimate_coverage: the share of rounds from ESTIMATE_COVERAGE_FROM labels whose 90% interval holds the
    test accuracy; estimate_mae_past_300: the mean |estimate - test accuracy| past ESTIMATE_MAE_FROM labels;
    stop_*: where the signal first fired (mean labels and test accuracy over the seeds where it did), how much
    accuracy the run still gained by twice those labels (or by the budget, when that comes first), and in
    how many seeds that gain was at most 0.01.
    """
    out = dict.fromkeys(("estimate_coverage", "estimate_mae_past_300", "estimate_width", "stop_labels",
                         "stop_accuracy", "stop_left_on_table", "stop_within_001"))
    est = [r for r in rows if r.get("estimated_accuracy") not in (None, "")]
    covered = [r for r in est if r["n_labels"] >= ESTIMATE_COVERAGE_FROM]
    if covered:
        out["estimate_coverage"] = float(np.mean([r["estimate_low"] <= r["accuracy"] <= r["estimate_high"]
                                                  for r in covered]))
        out["estimate_width"] = float(np.mean([r["estimate_high"] - r["estimate_low"] for r in covered]))
    late = [r for r in est if r["n_labels"] > ESTIMATE_MAE_FROM]
    if late:
        out["estimate_mae_past_300"] = float(np.mean([abs(r["estimated_accuracy"] - r["accuracy"]) for r in late]))
    fired, left = [], []
    seeds = sorted({r["seed"] for r in rows})
    for seed in seeds:
        run = sorted((r for r in rows if r["seed"] == seed), key=lambda r: r["n_labels"])
        first = next((r for r in run if r.get("stop_signal")), None)
        if first is None:
            continue
        later = [r for r in run if r["n_labels"] <= 2 * first["n_labels"]]
        fired.append((first["n_labels"], first["accuracy"]))
        left.append(later[-1]["accuracy"] - first["accuracy"])
    if fired:
        out["stop_labels"] = float(np.mean([n for n, _ in fired]))
        out["stop_accuracy"] = float(np.mean([a for _, a in fired]))
        out["stop_left_on_table"] = float(np.mean(left))
        out["stop_within_001"] = f"{sum(g <= 0.01 for g in left)}/{len(fired)} (fired in {len(fired)}/{len(seeds)})"
    return out


def _add_ratios(summary: list[dict]) -> None:
    random = next((s for s in summary if s["strategy"] == strategies.BASELINE), None)
    for s in summary:
        s["ratio_to_random"], s["ratio_note"] = None, ""
        if random is None:
            s["ratio_note"] = "no random run"
        elif s["labels_to_95"] is None:
            s["ratio_note"] = "not reached"
        elif random["labels_to_95"] is not None:
            s["ratio_to_random"] = s["labels_to_95"] / random["labels_to_95"]
            s["ratio_note"] = f"{s['ratio_to_random']:.2f}"
        else:
            s["ratio_note"] = f"<{s['labels_to_95'] / random['n_labels']:.2f} (random not reached)"


def write_summary(summary: list[dict], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for s in summary:
            writer.writerow({k: _fmt(s[k]) for k in SUMMARY_COLUMNS})


def table(experiment: Experiment, summary: list[dict]) -> str:
    full_mean, full_std = full_data(experiment)
    n_train = int(np.mean([s.n_train for s in experiment.setups]))
    cfg = experiment.config
    width = max([8] + [len(name) for name in cfg.strategies])
    lines = [
        f"full-data accuracy ({cfg.model} on all {n_train:,} training labels, {len(experiment.setups)} seeds): "
        f"{full_mean:.4f} ± {full_std:.4f}; 95% of it: {TARGET_FRACTION * full_mean:.4f}",
        f"{'strategy':<{width}} {'acc@budget':>16} {'macro-F1':>16} {'AULC':>16} {'labels→95%':>11} {'seeds':>6} "
        f"{'vs random':>26} {'fit s':>7} {'acq s':>7}",
    ]
    for s in summary:
        reached = "not reached" if s["labels_to_95"] is None else str(s["labels_to_95"])
        lines.append(
            f"{s['strategy']:<{width}} {s['accuracy_mean']:>8.4f} ± {s['accuracy_std']:.4f} "
            f"{s['macro_f1_mean']:>8.4f} ± {s['macro_f1_std']:.4f} {s['aulc_mean']:>8.4f} ± {s['aulc_std']:.4f} "
            f"{reached:>11} {s['seeds_reaching_95']:>6} {s['ratio_note']:>26} "
            f"{s['fit_seconds_mean']:>7.3f} {s['acquire_seconds_mean']:>7.3f}")
    if any(s.get("estimate_coverage") is not None for s in summary):
        lines.append(f"the accuracy estimate and the stop signal (against the test accuracy): interval coverage from "
                     f"{ESTIMATE_COVERAGE_FROM} labels, mean abs error past {ESTIMATE_MAE_FROM}, mean width; the "
                     f"signal's first firing, accuracy there, gain by twice its labels")
        for s in summary:
            if s.get("estimate_coverage") is None:
                continue
            stop = ("never fired" if s["stop_labels"] is None else
                    f"{s['stop_labels']:.0f} labels, acc {s['stop_accuracy']:.4f}, +{s['stop_left_on_table']:.4f} "
                    f"later, within 0.01: {s['stop_within_001']}")
            mae = "-" if s["estimate_mae_past_300"] is None else f"{s['estimate_mae_past_300']:.4f}"
            lines.append(f"  {s['strategy']:<{width}} coverage {s['estimate_coverage']:.2f}  MAE {mae}  "
                         f"width {s['estimate_width']:.3f}  stop: {stop}")
    missing = [name for name in cfg.strategies if name not in {s["strategy"] for s in summary}]
    for name in missing:
        lines.append(f"{name:<{width}} no run finished (the failures are in run.json)")
    lines.append(f"acc@budget at {max([s['n_labels'] for s in summary] or [0])} labels; AULC = mean accuracy over the "
                 f"curve; fit/acq s = mean seconds per round; {experiment.seconds:.0f} s in all "
                 f"({experiment.jobs} job{'s' if experiment.jobs != 1 else ''})")
    return "\n".join(lines)


def plot(experiment: Experiment, strategies: list[str], title: str, **kwargs) -> bytes:
    full_mean, _ = full_data(experiment)
    n_train = int(np.mean([s.n_train for s in experiment.setups]))
    series = []
    for strategy in strategies:
        curves = _curves(experiment.rows, strategy)
        if curves:
            n, mean, std = mean_curve(curves)
            series.append({"name": strategy, "x": n.tolist(), "y": mean.tolist(), "std": std.tolist()})
    return plots.learning_curves(series, reference=(full_mean, f"all {n_train:,} training labels"), title=title,
                                 xlabel="labels", ylabel="test accuracy", **kwargs)


def estimate_plot(rows: list[dict], strategy: str, title: str, width: int = 900, height: int = 500,
                  dpi: int = 100) -> bytes:
    """The accuracy estimate against the truth for one strategy, over its seeds: the test accuracy, the
    estimate and its 90% interval (means over the seeds), and where the stop signal first fired in each."""
    plt = plots._pyplot()
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    try:
        ax = fig.add_subplot(1, 1, 1)
        mine = [r for r in rows if r["strategy"] == strategy and r.get("estimated_accuracy") not in (None, "")]
        by_n: dict[int, list[dict]] = {}
        for r in mine:
            by_n.setdefault(int(r["n_labels"]), []).append(r)
        n = sorted(by_n)
        mean = lambda key: [float(np.mean([float(r[key]) for r in by_n[k]])) for k in n]  # noqa: E731
        ax.fill_between(n, mean("estimate_low"), mean("estimate_high"), color=plots.PALETTE[0], alpha=0.18,
                        linewidth=0, label="90% interval (mean of the seeds' bounds)")
        ax.plot(n, mean("estimated_accuracy"), color=plots.PALETTE[0], linewidth=2.2, label="estimated accuracy")
        ax.plot(n, mean("accuracy"), color="#000000", linewidth=1.6, linestyle="--", label="test accuracy")
        fired = {}
        for r in sorted(mine, key=lambda r: int(r["n_labels"])):
            if int(r.get("stop_signal") or 0) and r["seed"] not in fired:
                fired[r["seed"]] = int(r["n_labels"])
        for i, at in enumerate(sorted(fired.values())):
            ax.axvline(at, color=plots.PALETTE[1], linewidth=1.0, linestyle=":",
                       label="stop signal (first firing, one line per seed)" if i == 0 else None)
        ax.set_ylim(max(0.0, min(mean("estimate_low") + mean("accuracy")) - 0.03), 1.0)
        ax.set_title(title)
        return plots.accuracy_png(fig, ax, dpi)
    finally:
        plt.close(fig)


def write_all(experiment: Experiment, out_dir: str, title: str) -> tuple[list[dict], list[str]]:
    """curves.csv, summary.csv, curves.png (and curves_best.png past 8 strategies); returns the summary and files."""
    os.makedirs(out_dir, exist_ok=True)
    summary = summarize(experiment)
    files = [os.path.join(out_dir, name) for name in ("curves.csv", "summary.csv", "curves.png")]
    write_curves(experiment.rows, files[0])
    write_summary(summary, files[1])
    estimators = os.path.join(out_dir, "estimators.csv")
    if write_estimators(experiment.rows, estimators):
        files.append(estimators)
    names = [s["strategy"] for s in summary]
    with open(files[2], "wb") as fh:
        # plots.learning_curves keeps its legend inside the axes: grow the figure so a long one fits.
        fh.write(plot(experiment, names, title, width=960, height=max(540, LEGEND_ROW_PX * (len(names) + 1) + 200)))
    estimated = next((s["strategy"] for s in summary if s.get("estimate_coverage") is not None
                      and s["strategy"] != strategies.BASELINE), None) or \
        next((s["strategy"] for s in summary if s.get("estimate_coverage") is not None), None)
    if estimated:
        files.append(os.path.join(out_dir, "estimate.png"))
        with open(files[-1], "wb") as fh:
            fh.write(estimate_plot(experiment.rows, estimated, f"{title}: {estimated}, estimate against truth"))
    if len(names) > BEST_SHOWN + 1:
        # The shared palette has 8 colours; past that, lines share colours, so also plot the best few
        # (of the registry's: a peer's top-k retraces ours and would hide it).
        ranked = sorted((s for s in summary
                         if s["strategy"] != strategies.BASELINE and s["strategy"] not in peers.PEERS),
                        key=lambda s: -s["aulc_mean"])
        best = ([strategies.BASELINE] if strategies.BASELINE in names else []) + \
            [s["strategy"] for s in ranked[:BEST_SHOWN]]
        files.append(os.path.join(out_dir, "curves_best.png"))
        with open(files[-1], "wb") as fh:
            fh.write(plot(experiment, best, f"{title} (random and the {BEST_SHOWN} best by AULC)",
                          width=960, height=540))
    return summary, files

"""How many labels a target accuracy still needs: an inverse power law fitted to the estimates so far.

Learning curves of a fixed model family are well described by acc(n) = a - b n^-c (Figueroa et al. 2012,
"Predicting sample size required for classification performance"): ``a`` is where the curve levels off. The
fit weights each estimate by its interval; the parameters' uncertainty (their covariance, sampled) gives a
range for the labels needed, and says "out of reach" when even the optimistic end of the plateau stays below
the target.

It never claims more than the estimate's own 90% interval allows (issue 27.4): "reached" only when the latest
interval lies wholly at or above the target, "out of reach" only when it lies wholly below it too. A target
inside the interval is "uncertain" (or "projected", saying it may be reached already): the labels so far cannot
tell, whatever the fitted curve says, since the fit's band is narrower than the estimates it was fitted to.
The messages are plain words, in percent: the project page shows them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

MIN_POINTS = 4
DRAWS = 2_000
# Beyond this many times the labels so far, a projection is an extrapolation nobody should plan on.
HORIZON = 20


@dataclass(frozen=True)
class Projection:
    target: float
    status: str  # "reached", "projected", "out of reach", "too few points", "uncertain"
    labels_needed: int | None  # total labels at which the target is reached (median), when projected
    low: int | None  # 90% range of that
    high: int | None
    plateau: float | None  # a: the accuracy the curve levels off at
    plateau_low: float | None
    plateau_high: float | None
    message: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _curve(n, a, b, c):
    return a - b * np.power(n, -c)


def fit(n_labels, estimate, half_width) -> tuple[np.ndarray, np.ndarray] | None:
    """(a, b, c) and their covariance, or None when the fit fails."""
    from scipy.optimize import curve_fit

    n = np.asarray(n_labels, dtype=float)
    y = np.asarray(estimate, dtype=float)
    sigma = np.maximum(np.asarray(half_width, dtype=float), 0.005)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, cov = curve_fit(_curve, n, y, p0=(min(1.0, y.max() + 0.02), 1.0, 0.5), sigma=sigma,
                                    absolute_sigma=False, bounds=([0.0, 0.0, 0.01], [1.0, 100.0, 3.0]),
                                    maxfev=5_000)
    except (RuntimeError, ValueError):
        return None
    if not np.all(np.isfinite(cov)):
        return None
    return params, cov


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def project(n_labels, estimate, low, high, target: float, random_state=0) -> Projection:
    """Labels needed to reach ``target`` from (labels, estimate, interval) points of the estimate's history."""
    n = np.asarray(n_labels, dtype=float)
    y = np.asarray(estimate, dtype=float)
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0)
    n, y = n[keep], y[keep]
    lows, highs = np.asarray(low, dtype=float)[keep], np.asarray(high, dtype=float)[keep]
    half = (highs - lows) / 2
    current = int(n.max()) if len(n) else 0
    if len(n):
        last = int(np.argmax(n))
        now, now_low, now_high = float(y[last]), float(lows[last]), float(highs[last])
        if not np.isfinite(now_low):
            now_low = now
        if not np.isfinite(now_high):
            now_high = now
        interval = f"between {_pct(now_low)} and {_pct(now_high)}"
        if now_low >= target:
            return Projection(target, "reached", current, current, current, None, None, None,
                              f"reached: the model's accuracy ({interval}) is at or above the target")
        if now >= target:
            return Projection(target, "uncertain", None, current, None, None, None, None,
                              f"probably reached, not yet sure: the estimate ({_pct(now)}) is at the target, "
                              f"but its range ({interval}) still reaches below it; more labels will tell")
        inside = now_high >= target  # the target lies inside the estimate's own interval
    else:
        inside, interval = False, ""
    if len(np.unique(n)) < MIN_POINTS:
        return Projection(target, "too few points", None, None, None, None, None, None,
                          f"a projection needs estimates at {MIN_POINTS} label counts; there are {len(np.unique(n))}")
    fitted = fit(n, y, half)
    if fitted is None:
        return Projection(target, "uncertain", None, None, None, None, None, None,
                          "the learning curve could not be fitted yet")
    params, cov = fitted
    rng = np.random.default_rng(random_state)
    draws = rng.multivariate_normal(params, cov, size=DRAWS, check_valid="ignore")
    a_S, b_S, c_S = draws[:, 0], np.maximum(draws[:, 1], 1e-9), np.maximum(draws[:, 2], 1e-3)
    a_lo, a_hi = (float(np.clip(q, 0, 1)) for q in np.quantile(a_S, [0.05, 0.95]))
    plateau = float(params[0])
    levels = f"the accuracy seems to level off at about {_pct(plateau)} (between {_pct(a_lo)} and {_pct(a_hi)})"
    if a_hi < target:
        if inside:
            return Projection(target, "uncertain", None, None, None, plateau, a_lo, a_hi,
                              f"too early to say: {levels}, below the target, but the estimate itself "
                              f"({interval}) still includes the target; more labels will tell")
        return Projection(target, "out of reach", None, None, None, plateau, a_lo, a_hi,
                          f"more labels of this kind are unlikely to get there: {levels}, and the estimate "
                          f"({interval}) is below the target too; try another model or featurizer")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        needed_S = np.where(a_S > target, np.power(b_S / (a_S - target), 1 / c_S), np.inf)
    needed_S = np.maximum(needed_S, current)
    with np.errstate(invalid="ignore"):  # unreachable draws are inf: quantiles across them are inf, not NaN
        median = float(np.median(needed_S))
        lo, hi = np.quantile(needed_S, [0.05, 0.95])
    if not np.isfinite(median) or median > HORIZON * current:
        return Projection(target, "uncertain", None, int(lo) if np.isfinite(lo) else None, None, plateau, a_lo, a_hi,
                          f"no reliable count yet, as the target is near or above where the accuracy seems to "
                          f"level off (about {_pct(plateau)}, between {_pct(a_lo)} and {_pct(a_hi)})")
    needed, low_n, high_n = int(np.ceil(median)), int(np.floor(lo)), int(np.ceil(hi)) if np.isfinite(hi) else None
    spread = f", likely between {low_n:,} and {high_n:,}" if high_n is not None else ""
    maybe = (f"; it may be reached already, since the estimate ({interval}) includes the target"
             if inside else "")
    return Projection(target, "projected", needed, low_n, high_n, plateau, a_lo, a_hi,
                      f"about {needed:,} labels in all ({needed - current:,} more{spread}){maybe}")

"""How many labels a target accuracy still needs: an inverse power law fitted to the estimates so far.

Learning curves of a fixed model family are well described by acc(n) = a - b n^-c (Figueroa et al. 2012,
"Predicting sample size required for classification performance"): ``a`` is where the curve levels off. The
fit weights each estimate by its interval; the parameters' uncertainty (their covariance, sampled) gives a
range for the labels needed, and says "out of reach" when even the optimistic end of the plateau stays below
the target.
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


def project(n_labels, estimate, low, high, target: float, random_state=0) -> Projection:
    """Labels needed to reach ``target`` from (labels, estimate, interval) points of the estimate's history."""
    n = np.asarray(n_labels, dtype=float)
    y = np.asarray(estimate, dtype=float)
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0)
    n, y = n[keep], y[keep]
    half = (np.asarray(high, dtype=float) - np.asarray(low, dtype=float))[keep] / 2
    current = int(n.max()) if len(n) else 0
    if len(n) and y[np.argmax(n)] >= target:
        return Projection(target, "reached", current, current, current, None, None, None,
                          f"the estimate ({y[np.argmax(n)]:.3f}) is at the target already")
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
    if a_hi < target:
        return Projection(target, "out of reach", None, None, None, plateau, a_lo, a_hi,
                          f"the curve levels off at {plateau:.3f} (90%: {a_lo:.3f}-{a_hi:.3f}), below the target "
                          f"{target:.3f}: more labels of this kind will not get there; try another model or featurizer")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        needed_S = np.where(a_S > target, np.power(b_S / (a_S - target), 1 / c_S), np.inf)
    needed_S = np.maximum(needed_S, current)
    with np.errstate(invalid="ignore"):  # unreachable draws are inf: quantiles across them are inf, not NaN
        median = float(np.median(needed_S))
        lo, hi = np.quantile(needed_S, [0.05, 0.95])
    if not np.isfinite(median) or median > HORIZON * current:
        return Projection(target, "uncertain", None, int(lo) if np.isfinite(lo) else None, None, plateau, a_lo, a_hi,
                          f"the target {target:.3f} is near or above where the curve levels off ({plateau:.3f}, "
                          f"90%: {a_lo:.3f}-{a_hi:.3f}); no reliable count yet")
    return Projection(target, "projected", int(np.ceil(median)), int(np.floor(lo)),
                      int(np.ceil(hi)) if np.isfinite(hi) else None, plateau, a_lo, a_hi,
                      f"about {int(np.ceil(median)):,} labels in all ({int(np.ceil(median)) - current:,} more)")

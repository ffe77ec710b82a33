"""The current model's accuracy on the project's data, with a 90% interval.

Cross-validation on the labeled set measures the model on the items active learning found hard: the
labeled set is not a sample of the data, and its accuracy falls while the model improves. What can be
measured without that bias:

* Every item an annotator labels was served with the prediction of the model live at the time, a model
  that had not trained on it (prequential). Whether that prediction was right is an out-of-sample test of
  how far the model's confidence can be trusted *at that confidence*: strategies choose items by what the
  model says about them, so given the confidence, a chosen item is as likely to be right as any other.
* A share of every queue (the "audit" items) is drawn uniformly from the pool, so those tests are also a
  sample of the data itself.

The estimate recalibrates the current model's confidence with those tests (Platt scaling, shrunk towards
the identity while tests are few, recent tests weighing more: older models were calibrated differently)
and averages it over every item: the pool, and the labeled items through out-of-fold confidences (the
model has trained on them). The interval comes from the calibration's uncertainty (its Laplace posterior,
sampled), the spread of a finite set of items, and the calibration's misfit on the audits
(:func:`misfit_variance`): where that assumption fails, the audits show it.

Why this and not the audits alone or importance weights: the default strategy is deterministic (its
selection probabilities are 0 or 1, so LURE-style weights do not exist for it), and a 5% audit gives 15
audits at 300 labels, an interval of +-0.15. The audits alone, the audits as a correction term (a
difference estimator) and calibrations fitted on out-of-fold predictions were simulated beside this one;
docs/RESULTS.md has the numbers. Under the assumption above (given the confidence, the chance of being
right does not depend on how the item was chosen) the estimate is unbiased for a fixed model; the Monte
Carlo test checks it on a synthetic pool.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

LEVEL = 0.90
EPS = 1e-6
# Platt's two parameters are shrunk towards "the confidence is right" (a=0, b=1) with this strength, so a
# handful of tests moves the calibration only a little.
CALIBRATION_PRIOR = 4.0
# Averages over more items than this use an evenly spaced sample of them (the estimate's error is the
# calibration's, not the sample's, long before this).
MAX_ITEMS = 20_000
DRAWS = 400
HALF_LIFE_MIN = 50
HALF_LIFE_SHARE = 0.5


@dataclass(frozen=True)
class AccuracyEstimate:
    accuracy: float
    low: float
    high: float
    method: str
    n_tests: int  # prequential tests (labeled items served with a prediction)
    n_audit: int  # of which drawn uniformly (audits)
    candidates: dict = field(default_factory=dict)  # other estimators' (accuracy, low, high), for simulations

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "low": self.low, "high": self.high, "method": self.method,
                "n_tests": self.n_tests, "n_audit": self.n_audit}


def _logit(p):
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def recency_weights(age_M, n_labels: int) -> np.ndarray:
    """A test's weight halves every ``max(HALF_LIFE_MIN, HALF_LIFE_SHARE * n_labels)`` labels of age: the
    models that served old tests were worse calibrated than the current one (on digits, unweighted tests made
    the estimate 0.05 low at 150 labels)."""
    half_life = max(HALF_LIFE_MIN, HALF_LIFE_SHARE * n_labels)
    return np.power(0.5, np.asarray(age_M, dtype=float) / half_life)


def fit_calibration(conf_M, correct_M, prior=CALIBRATION_PRIOR, weights_M=None) -> tuple[np.ndarray, np.ndarray]:
    """Platt scaling of the confidence: P(right) = sigmoid(a + b logit(conf)); returns (a, b) and their
    covariance (the inverse Hessian at the optimum, the Laplace approximation).

    The prior (a Gaussian around a=0, b=1 of precision ``prior``) keeps the map near the identity while
    there are few tests, and finite when every test was right."""
    z_M = _logit(conf_M)
    c_M = np.asarray(correct_M, dtype=float)
    w_M = np.ones_like(z_M) if weights_M is None else np.asarray(weights_M, dtype=float)
    theta = np.array([0.0, 1.0])
    centre = np.array([0.0, 1.0])
    F_M_2 = np.column_stack([np.ones_like(z_M), z_M])
    for _ in range(50):
        p_M = _sigmoid(F_M_2 @ theta)
        grad = F_M_2.T @ (w_M * (p_M - c_M)) + prior * (theta - centre)
        H = (F_M_2 * (w_M * p_M * (1 - p_M))[:, None]).T @ F_M_2 + prior * np.eye(2)
        step = np.linalg.solve(H, grad)
        theta = theta - step
        if np.abs(step).max() < 1e-9:
            break
    p_M = _sigmoid(F_M_2 @ theta)
    H = (F_M_2 * (w_M * p_M * (1 - p_M))[:, None]).T @ F_M_2 + prior * np.eye(2)
    return theta, np.linalg.inv(H)


def calibrate(theta, conf_N) -> np.ndarray:
    return _sigmoid(theta[0] + theta[1] * _logit(conf_N))


def _thin(values: np.ndarray, cap: int = MAX_ITEMS) -> np.ndarray:
    if len(values) <= cap:
        return values
    return values[np.linspace(0, len(values) - 1, cap).astype(int)]


def estimate(pool_conf_N, labeled_conf_L, served_conf_M, correct_M, audit_M, age_M=None, *, n_labels=None, level=LEVEL,
             random_state=None) -> AccuracyEstimate | None:
    """The current model's accuracy on the data (pool and labeled items), with a ``level`` interval.

    pool_conf_N: the current model's confidence (probability of its predicted class) on each pool item;
    labeled_conf_L: out-of-fold confidences on the labeled items (empty: the pool alone);
    served_conf_M, correct_M, audit_M: per prequential test, the confidence it was served with, whether that
    prediction was right, and whether the item was an audit (uniform) pick.
    None when there is no test yet.
    """
    rng = np.random.default_rng(random_state)
    served_conf_M = np.asarray(served_conf_M, dtype=float)
    correct_M = np.asarray(correct_M, dtype=float)
    audit_M = np.asarray(audit_M, dtype=bool)
    if not len(served_conf_M):
        return None
    conf_all = _thin(np.concatenate([np.asarray(pool_conf_N, float), np.asarray(labeled_conf_L, float)]))
    if not len(conf_all):
        return None
    z = stats.norm.ppf(0.5 + level / 2)

    weights_M = None
    if age_M is not None:
        weights_M = recency_weights(age_M, len(served_conf_M) if n_labels is None else n_labels)
    theta, cov = fit_calibration(served_conf_M, correct_M, weights_M=weights_M)
    draws_S_2 = rng.multivariate_normal(theta, cov, size=DRAWS)
    z_all = _logit(conf_all)
    means_S = _sigmoid(draws_S_2[:, :1] + draws_S_2[:, 1:] * z_all[None, :]).mean(axis=1)
    g_all = calibrate(theta, conf_all)
    cal = float(g_all.mean())
    # The realized accuracy of a finite set of items scatters around its expectation as well.
    var_cal = float(means_S.var()) + float((g_all * (1 - g_all)).mean()) / len(conf_all)
    n_audit = int(audit_M.sum())
    var_cal += misfit_variance(theta, served_conf_M[audit_M], correct_M[audit_M])
    candidates = {"calibrated": (cal, cal - z * var_cal ** 0.5, cal + z * var_cal ** 0.5)}

    if n_audit:
        c_A = correct_M[audit_M]
        p_hat = float(c_A.mean())
        low, high = _wilson(c_A.sum(), n_audit, z)
        candidates["audit"] = (p_hat, low, high)
    method = "calibrated"
    acc, low, high = candidates[method]
    return AccuracyEstimate(_clip01(acc), _clip01(low), _clip01(high), method, len(served_conf_M), n_audit,
                            {k: tuple(_clip01(v) for v in vals) for k, vals in candidates.items()})


def misfit_variance(theta, conf_A, correct_A) -> float:
    """What the audits say the calibration misses, as a variance to add to the interval's.

    The calibration is fitted mostly on the items the strategy picked; the audits are a sample of the data,
    so their mean residual (right minus calibrated) estimates the calibration's bias on the data. Its
    square, less what sampling noise alone would give, is added: zero while the audits agree with the
    calibration, growing when they do not (on SMS the interval held the truth in 0.82 of rounds without it,
    0.89 with it; docs/RESULTS.md)."""
    n = len(conf_A)
    if n < 2:
        return 0.0
    g_A = calibrate(theta, conf_A)
    bias = float(np.mean(np.asarray(correct_A, dtype=float) - g_A))
    noise = float(np.mean(g_A * (1 - g_A))) / n
    return max(0.0, bias * bias - noise)


def _wilson(successes, n, z) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))

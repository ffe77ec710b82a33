"""Estimators of the current model's accuracy that simulations compute beside the reported one (issue 27).

`assay simulate` writes each one's estimate and interval per round to ``estimators.csv``; the server computes
none of them. They differ in which tests set the calibration of the pool's confidence:

* ``uniform``: only tests whose item was drawn uniformly from the pool (audits, and under a uniform strategy
  every label): the prequential ones (served with an older model's prediction, recency-weighted) and the
  out-of-fold ones (a model trained on the other labels, nearly the current one, predicting the audit item).
  Valid whatever the strategy, at the cost of few tests.
* ``pooled_or_not``: the pool's calibration is the uniform tests'; the strategy's picks share it or have one
  of their own, weighted by the evidence the uniform tests give each hypothesis (a Bayes factor: the uniform
  tests' likelihood given the picks, against their likelihood alone).
* ``ppi``: prediction-powered inference (Angelopoulos et al., Science 2023): the model's mean confidence on
  the data plus the audits' mean residual (out-of-fold correctness minus out-of-fold confidence). Unbiased for
  the out-of-fold model's accuracy whatever the calibration; its interval is the audits' sampling spread.
* ``raw``: the model's mean confidence, no calibration (how far the model's own confidence is off).

Why they exist, measured on a letters-like table (docs/RESULTS.md, issue 27): the reported estimator fits the
calibration mostly on the picks, and a model trained on a strategy's boundary picks is underconfident on the
rest of the pool, which the picks cannot show.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .accuracy import (CALIBRATION_PRIORS, DRAWS, LEVEL, _calibrated, _logit, fit_calibration, log_evidence,
                       mixture)


def _fit(conf_M, correct_M, weights_M, prior, z_all, rng) -> tuple[float, float, float]:
    """Mean calibrated accuracy over the data, its variance (calibration draws + finite items), log evidence."""
    theta, cov = fit_calibration(conf_M, correct_M, prior=prior, weights_M=weights_M)
    draws_S_P = rng.multivariate_normal(theta, cov, size=DRAWS)
    g_all = _calibrated(theta[None, :], z_all)[0]
    var = float(_calibrated(draws_S_P, z_all).mean(axis=1).var()) + float((g_all * (1 - g_all)).mean()) / len(z_all)
    return float(g_all.mean()), var, log_evidence(conf_M, correct_M, prior, theta, cov, weights_M)


def _interval(mean: float, var: float, level: float) -> tuple[float, float, float]:
    half = stats.norm.ppf(0.5 + level / 2) * max(var, 0.0) ** 0.5
    return mean, mean - half, mean + half


def shift_weights(test_conf_M, test_w_M, conf_all, bins: int = 8, cap: float = 20.0) -> np.ndarray:
    """Weights that make the tests' confidences look like the data's: per bin of the data's confidence
    (quantiles), the data's share over the tests' (recency-weighted) share, capped at ``cap`` times the mean,
    then scaled so that they sum to their effective sample size (the Laplace covariance then counts the
    information the reweighted tests hold, not their number)."""
    z_all, z_M = _logit(conf_all), _logit(test_conf_M)
    edges = np.unique(np.quantile(z_all, np.linspace(0, 1, bins + 1)[1:-1]))
    bin_all, bin_M = np.searchsorted(edges, z_all), np.searchsorted(edges, z_M)
    data_share = np.bincount(bin_all, minlength=len(edges) + 1) / len(z_all)
    test_share = np.bincount(bin_M, weights=test_w_M, minlength=len(edges) + 1) / np.sum(test_w_M)
    ratio = np.where(test_share > 0, data_share / np.maximum(test_share, 1e-12), 0.0)
    w_M = test_w_M * ratio[bin_M]
    w_M = np.minimum(w_M, cap * w_M.mean())
    return w_M * (w_M.sum() / np.sum(w_M ** 2))


def ppi(conf_all, g_all, conf_A, g_A, correct_A, level=LEVEL) -> tuple[float, float, float]:
    """Prediction-powered inference: the model-based guess ``g`` averaged over the data, plus the mean
    residual (right minus guess) over uniformly drawn tests. Unbiased for the accuracy of the model that
    answered the tests whatever ``g`` is; ``g`` only narrows the interval."""
    d_A = np.asarray(correct_A, float) - np.asarray(g_A, float)
    mean = float(np.mean(g_all) + d_A.mean())
    return _interval(mean, float(np.var(g_all) / len(g_all) + d_A.var(ddof=1) / len(d_A)), level)


def candidates(conf_all, served_conf_M, correct_M, uniform_M, weights_M, oof_conf_A, oof_correct_A, *,
               loo=None, level=LEVEL, rng=None) -> dict[str, tuple[float, float, float]]:
    """name -> (estimate, low, high).

    conf_all: the current model's confidence on the data (pool, and out-of-fold on the labeled items);
    served_conf_M, correct_M, uniform_M, weights_M: the prequential tests, whether each item was drawn
    uniformly, and their recency weights; oof_conf_A, oof_correct_A: the out-of-fold confidence and
    correctness on the labeled items that were drawn uniformly.
    """
    rng = np.random.default_rng(rng)
    conf_all = np.asarray(conf_all, float)
    z_all = _logit(conf_all)
    uniform_M = np.asarray(uniform_M, bool)
    served_conf_M, correct_M = np.asarray(served_conf_M, float), np.asarray(correct_M, float)
    weights_M = np.ones(len(served_conf_M)) if weights_M is None else np.asarray(weights_M, float)
    oof_conf_A, oof_correct_A = np.asarray(oof_conf_A, float), np.asarray(oof_correct_A, float)
    out = {"raw": (float(conf_all.mean()),) * 3}
    # The reported estimate's evidence-weighted mixture with a looser shrinkage beside its two: an
    # underconfident model (temperature 2) needs a slope well above 1, which the close priors hold back.
    looser = [_fit(served_conf_M, correct_M, weights_M, prior, z_all, rng) for prior in (1.0, *CALIBRATION_PRIORS)]
    m, v, _ = mixture(*zip(*looser))
    out["looser"] = _interval(m, v, level)
    if loo is not None and len(loo[0]) >= 2:
        # Each uniform test answered by a model fitted on every other label: the current model but one.
        loo_conf, loo_correct = np.asarray(loo[0], float), np.asarray(loo[1], float)
        out["ppi_loo"] = ppi(conf_all, conf_all, loo_conf, loo_conf, loo_correct, level)
        fits = [fit_calibration(served_conf_M, correct_M, prior=prior, weights_M=weights_M)[0]
                for prior in CALIBRATION_PRIORS]
        g = lambda conf: np.mean([_calibrated(t[None, :], _logit(conf))[0] for t in fits], axis=0)
        out["ppi_loo_cal"] = ppi(conf_all, g(conf_all), loo_conf, g(loo_conf), loo_correct, level)
    n_oof = len(oof_conf_A)
    if n_oof >= 2:
        d_A = oof_correct_A - oof_conf_A
        out["ppi"] = _interval(float(conf_all.mean() + d_A.mean()),
                               float(conf_all.var() / len(conf_all) + d_A.var(ddof=1) / n_oof), level)
    U = (np.concatenate([oof_conf_A, served_conf_M[uniform_M]]),
         np.concatenate([oof_correct_A, correct_M[uniform_M]]),
         np.concatenate([np.ones(n_oof), weights_M[uniform_M]]))
    P = (served_conf_M[~uniform_M], correct_M[~uniform_M], weights_M[~uniform_M])
    if len(U[0]) < 2:
        return out
    uniform, pooled = [], []
    for prior in CALIBRATION_PRIORS:
        uniform.append(_fit(*U, prior, z_all, rng))
        if len(P[0]):
            both = tuple(np.concatenate([u, p]) for u, p in zip(U, P))
            mean, var, log_ev = _fit(*both, prior, z_all, rng)
            theta_p, cov_p = fit_calibration(*P[:2], prior=prior, weights_M=P[2])
            pooled.append((mean, var, log_ev - log_evidence(*P[:2], prior, theta_p, cov_p, P[2])))
    m, v, _ = mixture(*zip(*uniform))
    out["uniform"] = _interval(m, v, level)
    # Every prequential test, reweighted so that their confidences are distributed as the data's: a
    # strategy's picks crowd the unsure end, and unweighted they set the calibration of the confident end.
    shifted = shift_weights(served_conf_M, weights_M, conf_all)
    fits = [_fit(served_conf_M, correct_M, shifted, prior, z_all, rng) for prior in CALIBRATION_PRIORS]
    m, v, _ = mixture(*zip(*fits))
    out["shifted"] = _interval(m, v, level)
    if pooled:
        m, v, w_K = mixture(*zip(*(uniform + pooled)))
        out["pooled_or_not"] = _interval(m, v, level)
        out["pooled_weight"] = (float(w_K[len(uniform):].sum()),) * 3
    return out

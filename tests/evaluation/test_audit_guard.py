"""The estimate's interval also holds the audits' own (prediction-powered) interval, which rests on no
calibration: where the strategy's picks are harder than their confidence says, it still covers (issue 27)."""
import statistics

import numpy as np
import pytest
from scipy import stats

from assay.evaluation import accuracy


def test_audit_interval_is_the_ppi_mean_and_spread():
    rng = np.random.default_rng(0)
    conf_N = rng.uniform(0.5, 1.0, 500)
    conf_A = rng.uniform(0.5, 1.0, 12)
    right_A = rng.random(12) < conf_A
    mean, low, high = accuracy.audit_interval(conf_N, conf_A, right_A, level=0.9)
    residuals = [float(r) - c for r, c in zip(right_A, conf_A)]
    g = statistics.fmean(conf_A)
    var = statistics.variance(residuals + [-g, 1 - g]) / 12 + statistics.pvariance(conf_N) / 500
    assert mean == pytest.approx(statistics.fmean(conf_N) + statistics.fmean(residuals), abs=1e-12)
    assert high - mean == pytest.approx(mean - low, abs=1e-12)
    assert high - mean == pytest.approx(stats.norm.ppf(0.95) * var ** 0.5, rel=1e-9)


def test_few_audits_all_right_do_not_make_a_point_interval():
    # Five audits, all right at 0.99: their residuals barely vary, yet five answers cannot pin the accuracy.
    _, low, high = accuracy.audit_interval(np.full(100, 0.99), np.full(5, 0.99), np.ones(5, bool))
    assert high - low > 0.3


def _harder_picks_round(rng, n=3_000, n_picked=250, n_audits=25):
    """A pool whose model is underconfident (right more often than it says), while the strategy's picks,
    its least confident items, are right less often than their confidence says: the assumption the
    calibration rests on (given the confidence, a pick is right as often as any item) fails."""
    conf_N = 0.5 + 0.5 * rng.beta(3.0, 1.2, size=n)
    p_pool_N = accuracy.calibrate(np.array([0.6, 1.1]), conf_N)
    right_N = rng.random(n) < p_pool_N
    weights = (1 - conf_N) ** 2
    picked = rng.choice(n, size=n_picked, replace=False, p=weights / weights.sum())
    right_picked = rng.random(n_picked) < accuracy.calibrate(np.array([-0.6, 1.0]), conf_N[picked])
    audits = rng.choice(np.setdiff1d(np.arange(n), picked), size=n_audits, replace=False)
    served = np.concatenate([conf_N[picked], conf_N[audits]])
    correct = np.concatenate([right_picked, right_N[audits]])
    audit_M = np.r_[np.zeros(n_picked, bool), np.ones(n_audits, bool)]
    seed = int(rng.integers(1e9))
    plain = accuracy.estimate(conf_N, [], served, correct, audit_M, random_state=seed)
    guarded = accuracy.estimate(conf_N, [], served, correct, audit_M, audit_oof_conf_A=conf_N[audits],
                                audit_oof_correct_A=right_N[audits], random_state=seed)
    return plain, guarded, float(right_N.mean())


def test_the_audits_keep_the_interval_honest_when_the_picks_mislead_the_calibration():
    rng = np.random.default_rng(5)
    plain_cover, guarded_cover = [], []
    for _ in range(120):
        plain, guarded, truth = _harder_picks_round(rng)
        assert guarded.accuracy == plain.accuracy  # the point estimate is the calibration's
        assert guarded.low <= plain.low and guarded.high >= plain.high
        plain_cover.append(plain.low <= truth <= plain.high)
        guarded_cover.append(guarded.low <= truth <= guarded.high)
    assert np.mean(plain_cover) < 0.8, np.mean(plain_cover)  # the failure the guard is for is real here
    assert np.mean(guarded_cover) >= 0.88, np.mean(guarded_cover)

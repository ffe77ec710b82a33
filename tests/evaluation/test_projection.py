"""The labels-needed projection recovers a known inverse power law, and says when a target is out of reach."""
import numpy as np

from assay.evaluation import projection


def _curve(n, a=0.92, b=1.2, c=0.6):
    return a - b * np.power(n, -c)


def _points(noise=0.004, seed=0):
    rng = np.random.default_rng(seed)
    n = np.arange(50, 401, 10)
    y = _curve(n) + rng.normal(0, noise, len(n))
    return n, y, y - 0.02, y + 0.02


def test_projection_brackets_the_true_labels_needed():
    n, y, lo, hi = _points()
    target = 0.89
    truth = (1.2 / (0.92 - target)) ** (1 / 0.6)  # labels where the noiseless curve reaches the target
    result = projection.project(n, y, lo, hi, target)
    assert result.status == "projected", result
    assert result.low <= truth <= result.high
    assert abs(result.labels_needed - truth) / truth < 0.25
    assert 0.90 < result.plateau < 0.94


def test_target_above_the_plateau_is_out_of_reach():
    n, y, lo, hi = _points()
    result = projection.project(n, y, lo, hi, 0.97)
    assert result.status == "out of reach"
    assert result.plateau_high < 0.97 and "levels off" in result.message


def test_reached_and_too_few_points():
    n, y, lo, hi = _points()
    assert projection.project(n, y, lo, hi, 0.80).status == "reached"
    assert projection.project(n[:3], y[:3], lo[:3], hi[:3], 0.9).status == "too few points"

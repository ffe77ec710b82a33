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
    assert result.plateau_high < 0.97 and "level off" in result.message


def test_reached_and_too_few_points():
    n, y, lo, hi = _points()
    assert projection.project(n, y, lo, hi, 0.80).status == "reached"
    assert projection.project(n[:3], y[:3], lo[:3], hi[:3], 0.9).status == "too few points"


def test_a_target_inside_the_estimates_interval_is_never_called_out_of_reach():
    """Issue 27.4: the fit's band (narrow: the points line up) said "will not get there" while the estimate's own
    interval still held the target. Whatever the curve, the projection claims no more than that interval."""
    n, y, _, _ = _points()
    lo, hi = y - 0.1, y + 0.1  # the estimate's interval: 0.79-0.99 at the last point
    narrow = projection.project(n, y, y - 0.02, y + 0.02, 0.97)
    assert narrow.status == "out of reach" and narrow.plateau_high < 0.97  # the same curve, honest intervals
    result = projection.project(n, y, lo, hi, 0.97)
    assert result.plateau_high < 0.97  # the curve alone would say it levels off below the target
    assert result.status == "uncertain", result
    assert "unlikely to get there" not in result.message and "reached" not in result.message
    assert "too early to say" in result.message and "%" in result.message


def test_reached_only_when_the_whole_interval_is_at_the_target():
    n, y, _, _ = _points()
    target = float(y[-1]) - 0.01  # the estimate is above the target, its interval is not
    result = projection.project(n, y, y - 0.05, y + 0.05, target)
    assert result.status == "uncertain" and result.message.startswith("probably reached, not yet sure")
    result = projection.project(n, y, y - 0.005, y + 0.005, target)
    assert result.status == "reached" and result.message.startswith("reached")


def test_a_projection_with_the_target_inside_the_interval_says_it_may_be_reached():
    n, y, _, _ = _points()
    target = 0.895  # above the last estimate (0.888), inside 0.79-0.99, below the plateau (0.92)
    result = projection.project(n, y, y - 0.1, y + 0.1, target)
    assert result.status in ("projected", "uncertain"), result
    assert "may be reached already" in result.message or "too early" in result.message or \
        "no reliable count" in result.message
    assert "unlikely to get there" not in result.message

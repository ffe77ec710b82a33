"""Cohen's kappa against scikit-learn's, and the stabilizing-predictions rule."""
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from server.evaluation import stopping


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_kappa_matches_sklearn(n_classes):
    rng = np.random.default_rng(n_classes)
    a = rng.integers(n_classes, size=500)
    b = np.where(rng.random(500) < 0.8, a, rng.integers(n_classes, size=500))
    assert stopping.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    names = np.array([f"class {i}" for i in range(n_classes)], dtype=object)
    assert stopping.cohen_kappa(names[a], names[b]) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_of_identical_constant_predictions_is_one():
    assert stopping.cohen_kappa(["ham"] * 5, ["ham"] * 5) == 1.0
    with pytest.raises(ValueError, match="one length"):
        stopping.cohen_kappa([1, 2], [1])


def test_signal_needs_a_full_window_at_the_threshold():
    assert not stopping.stop_signal([0.995, 0.999])  # two rounds: not yet
    assert stopping.stop_signal([0.5, 0.995, 0.99, 0.999])
    assert not stopping.stop_signal([0.999, 0.999, 0.97])  # mean 0.989
    assert not stopping.stop_signal([0.999, float("nan"), 0.999, 0.999][:3])  # a round without a kappa
    assert stopping.stop_signal([0.95, 0.96, 0.97], threshold=0.95)


def test_stop_set_is_fixed_by_its_seed_and_capped():
    first = stopping.stop_set(10_000, np.random.default_rng(3))
    again = stopping.stop_set(10_000, np.random.default_rng(3))
    assert len(first) == stopping.STOP_SET_SIZE and np.array_equal(first, again)
    assert len(set(first.tolist())) == len(first)
    assert np.array_equal(stopping.stop_set(50, np.random.default_rng(0)), np.arange(50))

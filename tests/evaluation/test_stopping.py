"""Cohen's kappa against scikit-learn's, and the stabilizing-predictions rule."""
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from assay.evaluation import stopping


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


def test_the_reference_is_the_newest_model_with_at_most_four_fifths_of_the_labels():
    history = [(20, "a"), (30, "b"), (40, "c"), (50, "d")]
    assert stopping.reference_labels(50) == 40 and stopping.reference_labels(49) == 39
    assert stopping.reference(history, 50) == (40, "c")  # 40 <= 0.8 * 50, exactly
    assert stopping.reference(history, 49) == (30, "b")
    assert stopping.reference(history, 24) is None  # nothing trained on 19 labels or fewer
    assert stopping.reference(history, 100, lag_share=0.5) == (50, "d")


def test_a_version_settles_at_the_kappa_threshold_or_a_small_predicted_gain():
    assert stopping.settled(0.99) and stopping.settled(1.0)
    assert not stopping.settled(0.9899)
    assert not stopping.settled(None) and not stopping.settled(float("nan"))
    assert stopping.settled(0.95, threshold=0.95)
    assert stopping.settled(0.95, gain=0.003) and not stopping.settled(0.95, gain=0.0031)
    assert stopping.settled(0.995, gain=0.02)  # either condition is enough
    assert not stopping.settled(None, gain=None) and not stopping.settled(0.95, gain=float("nan"))
    assert stopping.settled(0.95, gain=0.01, gain_threshold=0.01)
    # A small gain counts only once the predictions have mostly settled: a near-uniform model expects no gain.
    assert stopping.settled(0.9, gain=0.0) and not stopping.settled(0.8999, gain=0.0)
    assert not stopping.settled(None, gain=0.0) and stopping.settled(0.5, gain=0.0, floor=0.5)


def test_the_signal_needs_three_settled_versions_in_a_row():
    assert stopping.stop_signal([True, True, True]) and stopping.stop_signal([False, True, True, True])
    assert not stopping.stop_signal([True, True]) and not stopping.stop_signal([True, True, False])
    assert not stopping.stop_signal([True, False, True, True])  # only the newest three count
    assert stopping.stop_signal([True, False, True, True, True])
    assert stopping.stop_signal([True], rounds=1) and not stopping.stop_signal([])


def test_predicted_gain_is_the_expected_accuracy_change_if_the_current_model_is_calibrated():
    """Monte Carlo: when the labels really are drawn from the current model's probabilities, its accuracy
    minus the reference's averages to predicted_gain."""
    rng = np.random.default_rng(5)
    classes = np.array(["a", "b", "c"], dtype=object)
    probs_S_C = rng.dirichlet([0.7, 0.7, 0.7], size=400)
    mine = classes[probs_S_C.argmax(axis=1)]
    reference = np.where(rng.random(400) < 0.7, mine, classes[rng.integers(3, size=400)])
    gain = stopping.predicted_gain(probs_S_C, classes, reference)
    draws = 4000
    cumulative = probs_S_C.cumsum(axis=1)
    y_D_S = classes[(rng.random((draws, 400, 1)) > cumulative[None]).sum(axis=2)]
    simulated = np.mean((y_D_S == mine).mean(axis=1) - (y_D_S == reference).mean(axis=1))
    assert gain > 0.02 and simulated == pytest.approx(gain, abs=0.002)
    # Agreement everywhere is no gain; a class the current model does not know counts as probability 0.
    assert stopping.predicted_gain(probs_S_C, classes, mine) == 0.0
    unknown = stopping.predicted_gain(probs_S_C[:1], classes, ["z"])
    assert unknown == pytest.approx(probs_S_C[0].max())
    assert np.isnan(stopping.predicted_gain(np.zeros((0, 3)), classes, []))


def test_the_lagged_rule_waits_for_the_labels_to_stop_mattering():
    """Successive models agreeing is not enough: a model that drifts 0.4% of its predictions per retrain
    agrees with the last one at kappa above 0.99 every time, yet the last fifth of the labels changed it by
    far more; the signal fires only once the drift stops."""
    rng = np.random.default_rng(0)
    preds = rng.integers(2, size=2000)
    history, fired_at = [], None
    for n in range(100, 1001, 10):
        if n <= 500:
            flip = rng.choice(2000, size=8, replace=False)
            preds = preds.copy()
            preds[flip] = 1 - preds[flip]
        if history:
            assert stopping.cohen_kappa(preds, history[-1][1]) > 0.99  # the paper's successive rule would fire
        ref = stopping.reference(history, n)
        kappa = stopping.cohen_kappa(preds, ref[1]) if ref else None
        history.append((n, preds))
        if fired_at is None and stopping.settled(kappa):
            fired_at = n
    # Its reference must span at most one retrain of drift: from 0.8 n >= 490, n = 620.
    assert fired_at == 620, fired_at


def test_stop_set_is_fixed_by_its_seed_and_capped():
    first = stopping.stop_set(10_000, np.random.default_rng(3))
    again = stopping.stop_set(10_000, np.random.default_rng(3))
    assert len(first) == stopping.STOP_SET_SIZE and np.array_equal(first, again)
    assert len(set(first.tolist())) == len(first)
    assert np.array_equal(stopping.stop_set(50, np.random.default_rng(0)), np.arange(50))

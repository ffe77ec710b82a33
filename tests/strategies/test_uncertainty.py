import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from assay.strategies import ModelOutputs, StrategyInputError, get
from assay.strategies.uncertainty import entropy, least_confidence, margin
from tests.timing import best_time

modal_uncertainty = pytest.importorskip("modAL.uncertainty")

SCORES = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}


@pytest.fixture(scope="module")
def digits_model():
    """LogisticRegression fitted on 300 digits; the other 1,497 are the pool."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    train, pool = order[:300], order[300:]
    clf = LogisticRegression(C=0.5, max_iter=2000).fit(X[train], y[train])
    return clf, X[pool]


def assert_same_top_k(ours, theirs, scores, k):
    """Both index sets are a top-k of ``scores`` (either may break a tie at the boundary differently)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert len(ours) == len(theirs) == k == len(set(ours.tolist()))
    kth = np.sort(scores)[::-1][k - 1]
    tol = 1e-12
    sure = set(np.flatnonzero(scores > kth + tol).tolist())
    assert sure <= set(ours.tolist()) and sure <= set(theirs.tolist())
    assert scores[ours].min() >= kth - tol and scores[theirs].min() >= kth - tol
    if np.sum(np.abs(scores - kth) <= tol) == 1:
        assert set(ours.tolist()) == set(theirs.tolist())


def test_scores_agree_with_modal(digits_model):
    clf, X_pool = digits_model
    probs = clf.predict_proba(X_pool)
    np.testing.assert_allclose(least_confidence(probs), modal_uncertainty.classifier_uncertainty(clf, X_pool),
                               atol=1e-12)
    # modAL's margin is top1 - top2 (smaller = more uncertain); ours is 1 - that.
    np.testing.assert_allclose(margin(probs), 1.0 - modal_uncertainty.classifier_margin(clf, X_pool), atol=1e-12)
    np.testing.assert_allclose(entropy(probs), modal_uncertainty.classifier_entropy(clf, X_pool), atol=1e-10)
    # The pool must actually exercise the scores: a spread of confident and unsure items.
    assert np.ptp(entropy(probs)) > 1.0


@pytest.mark.parametrize(
    "name, modal_query",
    [("least_confidence", "uncertainty_sampling"), ("margin", "margin_sampling"), ("entropy", "entropy_sampling")],
)
def test_top_k_agrees_with_modal(digits_model, name, modal_query):
    clf, X_pool = digits_model
    probs = clf.predict_proba(X_pool)
    k = 25
    ours = get(name).select(ModelOutputs(probs_N_C=probs), k, random_state=0).indices
    theirs, _ = getattr(modal_uncertainty, modal_query)(clf, X_pool, n_instances=k)
    assert_same_top_k(ours, theirs, SCORES[name](probs), k)
    # Ours is ordered best first.
    assert np.all(np.diff(SCORES[name](probs)[ours]) <= 1e-12)


def test_hand_computed_values():
    probs = np.array([
        [0.5, 0.3, 0.2],
        [1 / 3, 1 / 3, 1 / 3],
        [0.0, 1.0, 0.0],
        [0.0, 0.5, 0.5],
    ])
    np.testing.assert_allclose(least_confidence(probs), [0.5, 2 / 3, 0.0, 0.5])
    np.testing.assert_allclose(margin(probs), [0.8, 1.0, 0.0, 1.0])
    expected_entropy = [-(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2)), np.log(3), 0.0, np.log(2)]
    np.testing.assert_allclose(entropy(probs), expected_entropy, atol=1e-15)
    for fn in SCORES.values():
        assert fn(probs).dtype == np.float64


def test_single_class_scores_zero():
    probs = np.ones((4, 1))
    for fn in SCORES.values():
        np.testing.assert_array_equal(fn(probs), np.zeros(4))


def test_zero_probabilities_give_finite_entropy(make_probs):
    probs = make_probs(200, 6, concentration=0.05)
    probs[::3, 2] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    ours = entropy(probs)
    safe = np.where(probs > 0, probs, 1.0)
    np.testing.assert_allclose(ours, -(probs * np.log(safe)).sum(axis=1), atol=1e-12)
    assert np.all(np.isfinite(ours))


def test_rounding_slack_never_gives_negative_scores():
    # Rows summing to 1 + 5e-5 are accepted (float32 models drift), scores must still be >= 0.
    probs = np.array([[1.00005, 0.0], [0.50005, 0.5], [1.0, 0.00005]])
    for fn in SCORES.values():
        assert np.all(fn(probs) >= 0.0)


def test_float32_input(make_probs):
    probs = make_probs(100, 5)
    for fn in SCORES.values():
        out32 = fn(probs.astype(np.float32))
        assert out32.dtype == np.float64
        np.testing.assert_allclose(out32, fn(probs), atol=1e-5)


def test_integer_one_hot_input():
    probs = np.eye(3, dtype=np.int64)
    for fn in SCORES.values():
        np.testing.assert_array_equal(fn(probs), np.zeros(3))


def test_empty_pool_gives_empty_scores():
    for fn in SCORES.values():
        assert fn(np.empty((0, 4))).shape == (0,)


def test_inputs_not_mutated(make_probs, frozen):
    probs = make_probs(50, 4)
    probs[0] = [0.0, 0.0, 1.0, 0.0]
    kept = frozen(probs)
    for fn in SCORES.values():
        fn(kept)  # read-only: an in-place write would raise
        fn(probs)
        np.testing.assert_array_equal(probs, kept)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full(4, 0.25), "2 dimensions"),
        (np.full((2, 2, 2), 0.5), "2 dimensions"),
        (np.array([[0.5, np.nan], [0.5, 0.5]]), "NaN"),
        (np.array([[1.5, -0.5], [0.5, 0.5]]), "negative"),
        (np.array([[2.0, 1.0], [0.5, 0.5]]), "sum to 1"),
        (np.array([[0.3, 0.3], [0.5, 0.5]]), "sum to 1"),
        (np.array([["a", "b"]]), "real numbers"),
        (np.empty((3, 0)), "class"),
    ],
)
def test_bad_input_is_refused(bad, message):
    for fn in SCORES.values():
        with pytest.raises(StrategyInputError, match=message):
            fn(bad)
    assert issubclass(StrategyInputError, ValueError)


def test_fast_on_a_large_pool(make_probs):
    probs = make_probs(100_000, 10)
    # The least a per-row Python loop would do: one numpy call per row.
    per_row = best_time(lambda: [row.max() for row in probs], repeat=3)
    for fn in SCORES.values():
        fn(probs)  # warm up
        took = best_time(lambda: fn(probs))
        # A few ms in practice, a tenth of the loop or less; the bound only catches a per-row Python loop.
        assert took < per_row, (fn.__name__, took, per_row)

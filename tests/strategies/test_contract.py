"""One contract every registered strategy keeps, whatever it computes."""
import dataclasses

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from assay import strategies
from assay.strategies import (EMBEDDINGS, LINEAR_HEAD, PROBS, SAMPLES, LinearHead, ModelOutputs, StrategyInputError,
                        available, get)

N_TRAIN, N_VAL, N_POOL, N_SAMPLES = 60, 30, 40, 8
L2 = 1.0

# Which ModelOutputs field carries each capability.
FIELDS = {PROBS: "probs_N_C", SAMPLES: "probs_N_K_C", EMBEDDINGS: "embeddings_N_D", LINEAR_HEAD: "head"}


def _softmax(logits):
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def outputs() -> ModelOutputs:
    """Everything any strategy may need, from a multinomial logistic regression on synthetic data."""
    X, y = make_classification(n_samples=N_TRAIN + N_VAL + N_POOL, n_features=5, n_informative=3,
                               n_redundant=0, n_classes=3, n_clusters_per_class=1, random_state=0)
    X1 = np.hstack([X, np.ones((len(X), 1))])  # the bias as a constant feature, penalised like the rest
    train, val, pool = np.split(np.arange(len(X)), [N_TRAIN, N_TRAIN + N_VAL])
    # sklearn minimises C * sum CE + ||W||^2 / 2, i.e. sum CE + (l2 / 2) ||W||^2 with l2 = 1 / C.
    clf = LogisticRegression(C=1.0 / L2, fit_intercept=False, tol=1e-10, max_iter=10_000).fit(X1[train], y[train])
    W = clf.coef_
    # Posterior samples: the same K perturbed heads for every item, as predict_proba_samples promises.
    W_K = W + 0.5 * np.random.default_rng(1).standard_normal((N_SAMPLES, *W.shape))
    head = LinearHead(W_C_D=W, X_train_N_D=X1[train], y_train_N=y[train], X_val_M_D=X1[val], y_val_M=y[val],
                      X_pool_P_D=X1[pool], l2=L2)
    return ModelOutputs(
        probs_N_C=clf.predict_proba(X1[pool]),
        probs_N_K_C=_softmax(np.einsum("nd,kcd->nkc", X1[pool], W_K)),
        embeddings_N_D=X[pool],
        head=head,
    )


def _without(outputs: ModelOutputs, capability: str) -> ModelOutputs:
    return dataclasses.replace(outputs, **{FIELDS[capability]: None}, pool_size=None)


def _empty(outputs: ModelOutputs) -> ModelOutputs:
    head = outputs.head
    return ModelOutputs(
        probs_N_C=outputs.probs_N_C[:0],
        probs_N_K_C=outputs.probs_N_K_C[:0],
        embeddings_N_D=outputs.embeddings_N_D[:0],
        head=dataclasses.replace(head, X_pool_P_D=head.X_pool_P_D[:0]),
    )


@pytest.fixture(params=available())
def strategy(request):
    return get(request.param)


def test_registry_lists_the_designed_names():
    expected = {"random", "least_confidence", "margin", "entropy", "bald", "batchbald", "dpp", "influence",
                "power_bald", "softmax_bald", "softrank_bald", "power_entropy", "power_margin"}
    assert expected <= set(available())


def test_fixture_really_has_every_capability(outputs):
    assert outputs.available() == frozenset(strategies.CAPABILITIES)
    assert outputs.pool_size == N_POOL
    np.testing.assert_allclose(outputs.probs_N_K_C.sum(axis=2), 1.0)


def test_returns_distinct_in_range_indices(strategy, outputs):
    sel = strategy.select(outputs, 7, random_state=0)
    assert sel.strategy == strategy.name
    assert sel.indices.shape == (7,) and np.issubdtype(sel.indices.dtype, np.integer)
    assert len(set(sel.indices.tolist())) == 7
    assert sel.indices.min() >= 0 and sel.indices.max() < N_POOL
    assert sel.scores.shape == (7,) and np.all(np.isfinite(sel.scores))


def test_pool_scores_have_one_per_item(strategy, outputs):
    scores = strategy.score(outputs)
    if scores is None:
        pytest.skip(f"{strategy.name} has no per-item score")
    assert scores.shape == (N_POOL,) and np.all(np.isfinite(scores))


def test_deterministic_under_a_fixed_seed(strategy, outputs):
    a = strategy.select(outputs, 5, random_state=42)
    b = strategy.select(outputs, 5, random_state=42)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_generator_as_random_state(strategy, outputs):
    a = strategy.select(outputs, 5, random_state=np.random.default_rng(9))
    b = strategy.select(outputs, 5, random_state=np.random.default_rng(9))
    np.testing.assert_array_equal(a.indices, b.indices)
    assert len(set(a.indices.tolist())) == 5


def test_batch_equal_to_pool(strategy, outputs):
    sel = strategy.select(outputs, N_POOL, random_state=0)
    assert sorted(sel.indices.tolist()) == list(range(N_POOL))
    assert sel.scores.shape == (N_POOL,)


def test_empty_pool_is_refused(strategy, outputs):
    with pytest.raises(StrategyInputError, match="empty"):
        strategy.select(_empty(outputs), 1, random_state=0)


@pytest.mark.parametrize("batch_size", [0, N_POOL + 1])
def test_bad_batch_size_is_refused(strategy, outputs, batch_size):
    with pytest.raises(StrategyInputError, match="batch_size"):
        strategy.select(outputs, batch_size, random_state=0)


def test_missing_capability_is_named(strategy, outputs):
    if not strategy.needs:
        sel = strategy.select(ModelOutputs(pool_size=N_POOL), 3, random_state=0)
        assert len(set(sel.indices.tolist())) == 3
        return
    for capability in strategy.needs:
        with pytest.raises(StrategyInputError, match=capability):
            strategy.select(_without(outputs, capability), 3, random_state=0)


def test_inputs_not_mutated(strategy, outputs):
    before = {name: np.copy(getattr(outputs, name)) for name in ("probs_N_C", "probs_N_K_C", "embeddings_N_D")}
    W_before = outputs.head.W_C_D.copy()
    strategy.select(outputs, 6, random_state=0)
    for name, arr in before.items():
        np.testing.assert_array_equal(getattr(outputs, name), arr)
    np.testing.assert_array_equal(outputs.head.W_C_D, W_before)

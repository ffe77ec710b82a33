"""Cross-fitted influence heads (issue 11, item 5): every label validates once, not a fifth of them."""
from __future__ import annotations

import numpy as np
import pytest

from assay import strategies
from assay.learning.acquire import _linear_head, model_outputs, run_round
from assay.models import LogisticRegression
from assay.strategies.influence import influence_scores


def _data(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y_idx = rng.integers(3, size=n)
    X = rng.normal(size=(3, d))[y_idx] * 2 + rng.normal(size=(n, d))
    return X, np.array(["a", "b", "c"], dtype=object)[y_idx], rng.normal(size=(30, d))


def test_each_label_validates_in_exactly_one_head():
    X, y, X_pool = _data()
    heads = _linear_head("logreg", {}, X, y, X_pool, np.random.default_rng(0), folds=5)
    assert isinstance(heads, tuple) and len(heads) == 5
    # One row of each class trains every head; the rest are split over the folds.
    assert sum(len(h.y_val_M) for h in heads) == len(y) - 3
    for h in heads:
        assert len(h.y_train_N) + len(h.y_val_M) == len(y)
        assert len(h.X_pool_P_D) == len(X_pool)
    # Disjoint validation folds: the validation rows, matched back to X, never repeat.
    seen = [tuple(np.round(row[:-1], 9)) for h in heads for row in h.X_val_M_D]
    assert len(seen) == len(set(seen)) == len(y) - 3


def test_one_fold_is_the_papers_held_out_fifth():
    X, y, X_pool = _data()
    head = _linear_head("logreg", {}, X, y, X_pool, np.random.default_rng(0), folds=1)
    assert not isinstance(head, tuple)
    assert len(head.y_val_M) == pytest.approx(0.2 * len(y), abs=3)


def test_cross_fitted_score_is_the_sum_of_the_heads_scores():
    X, y, X_pool = _data()
    strategy = strategies.get("influence")
    assert strategy.params == {"folds": 5}
    outputs = model_outputs(LogisticRegression().fit(X, y), strategy, X_pool, X_labeled=X, y_labeled=y,
                            model_spec="logreg", model_params={}, rng=np.random.default_rng(3))
    by_hand = sum(influence_scores(h.W_C_D, h.X_train_N_D, h.y_train_N, h.X_val_M_D, h.y_val_M, h.X_pool_P_D, h.l2)
                  for h in outputs.heads())
    np.testing.assert_allclose(strategy.score(outputs), by_hand)
    chosen = strategy.select(outputs, 4)
    np.testing.assert_array_equal(chosen.indices, np.argsort(-by_hand, kind="stable")[:4])


def test_folds_must_be_a_positive_integer():
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="folds"):
            strategies.get("influence", folds=bad)
    result = run_round(model_spec="logreg", model_params={}, strategy_name="influence", strategy_params={"folds": 3},
                       X_labeled=_data()[0], y_labeled=_data()[1], X_pool=_data()[2], batch_size=3, random_state=0)
    assert result.strategy == "influence" and len(set(result.indices.tolist())) == 3


"""`default`: typicality while labels are few per class, then the model's uncertainty (a budget switch)."""
from __future__ import annotations

import numpy as np
import pytest

from assay import strategies
from assay.learning import propensity
from assay.learning.acquire import run_round
from assay.strategies import ModelOutputs, StrategyInputError


def _outputs(n_labeled, num_classes=4, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + n_labeled, 6)).astype(np.float32)
    probs = rng.dirichlet(np.ones(num_classes), size=n)
    return ModelOutputs(probs_N_C=probs, embeddings_N_D=X[:n], labeled_embeddings_L_D=X[n:] if n_labeled else None)


@pytest.mark.parametrize("n_labeled, phase", [(0, "typiclust"), (11, "typiclust"), (12, "margin"), (40, "margin")])
def test_the_phase_follows_labels_per_class(n_labeled, phase):
    """Switch at 3 labels per class: 4 classes switch at 12 labels."""
    outputs = _outputs(n_labeled)
    got = strategies.get("default").select(outputs, 8, random_state=5)
    want = strategies.get(phase).select(outputs, 8, random_state=5)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.scores, want.scores)


@pytest.mark.parametrize("params", [{}, {"switch": 1, "then": "entropy"}, {"switch": 10, "first": "probcover"}])
@pytest.mark.parametrize("n_labeled", [0, 3, 4, 11, 12, 39, 40])
def test_the_phase_it_declares_is_the_one_it_runs(params, n_labeled):
    """Strategy.phase (what propensity asks) names the strategy whose picks select returns: one rule."""
    outputs = _outputs(n_labeled)
    default = strategies.get("default", **params)
    phase = default.phase(n_labeled, 4)
    assert phase.name in default.phases == (default.params["first"], default.params["then"])
    got = default.select(outputs, 8, random_state=5)
    np.testing.assert_array_equal(got.indices, phase.select(outputs, 8, random_state=5).indices)
    assert default.draw_at(n_labeled, 4) == phase.draw
    # The selection probability the retrain records follows the same phase.
    want = strategies.inclusion_probability(phase.draw, 8, 300)
    assert propensity.batch_probability("default", params, batch=8, pool=300, n_labels=n_labeled,
                                        n_classes=4) == want


def test_without_a_model_it_is_in_its_first_phase():
    default = strategies.get("default")
    assert default.phase(100, None).name == default.phase(100, 0).name == "typiclust"
    assert default.phase(11, 4).name == "typiclust" and default.phase(12, 4).name == "margin"


def test_the_phases_and_the_switch_are_parameters():
    outputs = _outputs(12)
    got = strategies.get("default", switch=10, first="probcover", then="entropy").select(outputs, 5, random_state=1)
    np.testing.assert_array_equal(got.indices, strategies.get("probcover").select(outputs, 5, random_state=1).indices)
    late = strategies.get("default", switch=1, then="entropy").select(outputs, 5, random_state=1)
    np.testing.assert_array_equal(late.indices, strategies.get("entropy").select(outputs, 5).indices)
    for bad in ({"first": "default"}, {"then": "nope"}, {"then": "bald"}, {"switch": -1}):
        with pytest.raises(StrategyInputError):
            strategies.get("default", **bad)


def test_its_per_item_score_is_the_second_phase():
    """What a deep queue ranks by, and what multi-label projects sum over labels."""
    outputs = _outputs(40)
    default = strategies.get("default")
    assert default.by_score and default.score_name == "margin"
    np.testing.assert_allclose(default.score(outputs), strategies.get("margin").score(outputs))


def test_cold_start_is_typiclust_on_the_features():
    rng = np.random.default_rng(0)
    X_pool = rng.normal(size=(200, 5))
    result = run_round(model_spec="logreg", model_params={}, strategy_name="default", strategy_params=None,
                       X_labeled=X_pool[:1], y_labeled=["a"], X_pool=X_pool[1:], batch_size=6, random_state=0)
    assert result.cold_start and result.strategy == "typiclust (cold start)"
    want = strategies.get("typiclust").select(ModelOutputs(embeddings_N_D=X_pool[1:], labeled_embeddings_L_D=X_pool[:1]),
                                              6, random_state=np.random.default_rng(0))
    np.testing.assert_array_equal(result.indices, want.indices)


def test_multi_label_rounds_rank_by_summed_margin():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4))
    y = [["a"] if x[0] > 0 else ["b"] if x[1] > 0 else ["a", "b"] for x in X[:40]]
    result = run_round(model_spec="logreg", model_params={}, strategy_name="default", strategy_params=None,
                       X_labeled=X[:40], y_labeled=y, X_pool=X[40:], batch_size=5, multi_label=True,
                       label_names=["a", "b"], random_state=0)
    assert not result.cold_start and len(result.indices) == 5

"""What every registered strategy declares for its callers, and that it does what it declares.

Callers outside strategies/ read these instead of comparing names (tests/server/test_no_strategy_names.py):
the phases, how a batch is drawn (its selection probability), the score beyond the batch, the cold start,
multi-label and the cluster form.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from assay import strategies
from assay.strategies import (CLUSTER_BY_SCORE, CLUSTER_SHORTLIST, DETERMINISTIC, DRAWS, EMBEDDINGS,
                              NO_CLOSED_FORM, PROBS, UNIFORM, UNIFORM_ORDER, ModelOutputs, available, get)
from assay.strategies.registry import SCORES
from tests.strategies.test_contract import N_POOL, outputs  # noqa: F401  (the fixture with every capability)

BUDGETS = [(0, None), (0, 0), (1, 2), (5, 2), (6, 2), (11, 4), (12, 4), (500, 3)]


@pytest.fixture(params=available())
def strategy(request):
    return get(request.param)


def test_each_declares_how_its_batch_is_drawn_at_every_budget(strategy):
    if strategy.phases:
        assert strategy.draw is None and strategy.phase_rule is not None
        assert all(p in available() for p in strategy.phases)
    else:
        assert strategy.draw in DRAWS and strategy.phase_rule is None
    for n_labels, n_classes in BUDGETS:
        phase = strategy.phase(n_labels, n_classes)
        assert phase.name in (strategy.phases or (strategy.name,))
        assert not phase.phases and phase.draw in DRAWS
        assert strategy.draw_at(n_labels, n_classes) == phase.draw
        assert strategy.draw_at(n_labels, n_classes, multi_label=True) in DRAWS


def test_each_declares_its_cold_start_and_multi_label(strategy):
    by = get(strategy.cold_start)
    assert by.needs <= {EMBEDDINGS} and not by.phases
    assert strategy.cold_start_label == f"{strategy.cold_start} (cold start)"
    assert strategy.multi_label == (strategy.by_score or not strategy.needs)


def test_each_declares_the_score_beyond_its_batch(strategy, outputs):  # noqa: F811
    assert strategy.beyond_label == f"{strategy.beyond} (beyond the batch)"
    if strategy.by_score:
        assert strategy.beyond == strategy.score_name and strategy.beyond_draw == DETERMINISTIC
        np.testing.assert_allclose(strategy.beyond_scores(outputs), strategy.score(outputs))
    elif strategy.draw == UNIFORM:
        assert strategy.beyond == UNIFORM_ORDER and strategy.beyond_draw == UNIFORM
        a = strategy.beyond_scores(outputs, np.random.default_rng(0))
        assert a.shape == (N_POOL,) and not np.array_equal(a, strategy.beyond_scores(outputs, np.random.default_rng(1)))
    else:
        assert strategy.beyond in SCORES and strategy.beyond_draw == DETERMINISTIC
        probs_only = ModelOutputs(probs_N_C=outputs.probs_N_C)
        np.testing.assert_allclose(strategy.beyond_scores(probs_only), SCORES[strategy.beyond][1](probs_only))
        assert strategy.beyond_scores(ModelOutputs(pool_size=N_POOL)) is None  # the caller asks the model


def test_each_declares_its_cluster_form(strategy):
    assert strategy.on_cluster in ("", CLUSTER_BY_SCORE, CLUSTER_SHORTLIST)
    if strategy.on_cluster:
        # The shards get the scorers themselves, so they must travel by reference (pickle, not cloudpickle).
        assert pickle.loads(pickle.dumps(strategy.scorer)) is strategy.scorer
        if strategy.beyond_scorer is not None:
            assert pickle.loads(pickle.dumps(strategy.beyond_scorer)) is strategy.beyond_scorer
    if strategy.on_cluster == CLUSTER_BY_SCORE:
        assert strategy.by_score and strategy.needs == {PROBS}


def test_the_cluster_forms_are_the_ones_the_cluster_had():
    by_score = {n for n in available() if get(n).on_cluster == CLUSTER_BY_SCORE}
    base = ("least_confidence", "margin", "entropy")
    assert by_score == {f"{m}_{b}" for m in strategies.registry.MODES for b in base} | set(base)
    assert [n for n in available() if get(n).on_cluster == CLUSTER_SHORTLIST] == ["dpp"]


def test_the_draw_is_what_the_batch_does(strategy, outputs):  # noqa: F811
    """Deterministic: the same picks whatever the seed. Uniform: every item alike, k/N. No closed form: the
    picks move with the seed."""
    phase = strategy.phase(500, 3)  # default: its second phase, margin
    if "num_samples" in phase.params:
        # BatchBALD enumerates the label configurations exactly when they are few (3 classes, 7 picks): sample.
        phase = get(phase.name, num_samples=50)
    picks = [tuple(phase.select(outputs, 7, random_state=seed).indices.tolist()) for seed in range(6)]
    if phase.draw == DETERMINISTIC:
        assert len(set(picks)) == 1
    elif phase.draw == NO_CLOSED_FORM:
        assert len(set(picks)) > 1
    else:
        counts = np.zeros(N_POOL)
        rng = np.random.default_rng(0)
        for _ in range(2000):
            counts[phase.select(outputs, 7, random_state=rng).indices] += 1
        np.testing.assert_allclose(counts / 2000, 7 / N_POOL, atol=0.04)


def test_inclusion_probability_by_draw():
    assert strategies.inclusion_probability(UNIFORM, 10, 400) == 0.025
    assert strategies.inclusion_probability(UNIFORM, 10, 5) == 1.0
    assert strategies.inclusion_probability(UNIFORM, 10, 0) is None
    assert strategies.inclusion_probability(DETERMINISTIC, 10, 400) == 1.0
    assert strategies.inclusion_probability(NO_CLOSED_FORM, 10, 400) is None


def test_the_marks_are_the_ones_users_see():
    assert strategies.cold_start_label("dpp") == "dpp (cold start)"
    assert strategies.beyond_label("margin") == "margin (beyond the batch)"
    assert get("random").beyond_label == "random (beyond the batch)"
    assert get("power_bald").beyond_label == "bald (beyond the batch)"
    assert get("dpp").beyond_label == "margin (beyond the batch)"
    assert get("default", then="power_margin").beyond_label == "power_margin (beyond the batch)"
    assert get("default").cold_start_label == "typiclust (cold start)"
    assert get("typiclust").cold_start_label == "dpp (cold start)"
    assert get("margin").cold_start_label == "random (cold start)"

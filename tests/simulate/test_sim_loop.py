"""The experiment loop: shared design across strategies, the budget, and no label leak."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from assay.learning import acquire
from assay.simulate import run as run_mod
from assay.simulate.data import load_dataset
from assay.simulate.oracle import Oracle
from assay.simulate.run import Config, run_experiment

STRATEGIES = ("random", "margin", "power_bald", "influence", "modal_margin")


class RecordingOracle(Oracle):
    """The oracle, plus a log of every answer, so a spy can compare the model's inputs against it."""

    current = None

    def __init__(self, labels):
        super().__init__(labels)
        self.answers = []
        self.queries = 0
        RecordingOracle.current = self

    def reveal(self, positions):
        answers = super().reveal(positions)
        self.queries += 1
        self.answers.extend(answers)
        return answers


def _row_keys(X):
    return [np.asarray(row, dtype=np.float32).tobytes() for row in X]


@pytest.fixture(scope="module")
def spied(sms_file):
    """Run a small SMS experiment in-process with the oracle, run_round and every model fit watched."""
    calls, fits, evaluations, loaded = [], [], [], {}
    inside = {"round": False}
    real_run_round, real_fit, real_load, real_evaluate = run_mod.run_round, acquire.fit_model, run_mod._load, \
        run_mod.evaluate

    def load(path):
        arrays = real_load(path)
        loaded["X_train"] = arrays[0]
        return arrays

    def run_round(**kw):
        oracle = RecordingOracle.current
        calls.append({"strategy": kw["strategy_name"], "X_labeled": np.array(kw["X_labeled"]),
                      "y_labeled": list(kw["y_labeled"]), "answers": list(oracle.answers),
                      "revealed": oracle.revealed.copy(), "X_pool": np.array(kw["X_pool"]),
                      "X_train": loaded["X_train"], "batch_size": kw["batch_size"]})
        inside["round"] = True
        try:
            return real_run_round(**kw)
        finally:
            inside["round"] = False

    def fit_model(spec, params, X, y, random_state=None, **kw):
        oracle = RecordingOracle.current
        fits.append({"in_loop": oracle is not None, "X": np.array(X), "y": list(y),
                     "answers": list(oracle.answers) if oracle else None,
                     "revealed": oracle.revealed.copy() if oracle else None,
                     "X_train": loaded.get("X_train")})
        return real_fit(spec, params, X, y, random_state=random_state, **kw)

    def evaluate(model, X_test, y_test, classes, fallback):
        evaluations.append((RecordingOracle.current, X_test.tobytes(), tuple(y_test)))
        return real_evaluate(model, X_test, y_test, classes, fallback)

    load.cache_clear = real_load.cache_clear
    RecordingOracle.current = None
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(run_mod, "Oracle", RecordingOracle)
        monkeypatch.setattr(run_mod, "run_round", run_round)
        monkeypatch.setattr(run_mod, "_load", load)
        monkeypatch.setattr(run_mod, "evaluate", evaluate)
        monkeypatch.setattr(run_mod, "fit_model", fit_model)
        monkeypatch.setattr(acquire, "fit_model", fit_model)
        dataset = load_dataset(sms_file, label_column="Label", text_column="SMS")
        config = Config(strategies=STRATEGIES, initial=20, batch=10, budget=55, seeds=(0, 1))
        experiment = run_experiment(dataset, config, jobs=1)
    return experiment, calls, fits, evaluations


def test_no_label_outside_the_revealed_set_reaches_the_model(spied):
    experiment, calls, fits, _ = spied
    assert calls, "run_round was never called"
    for call in calls:
        # The labeled set handed to run_round is exactly what the oracle revealed, in order...
        assert call["y_labeled"] == call["answers"]
        np.testing.assert_array_equal(call["X_labeled"], call["X_train"][call["revealed"]])
        # ...and the pool is exactly everything else.
        assert len(call["X_pool"]) == len(call["X_train"]) - len(call["revealed"])
        pool_keys, labeled_keys = Counter(_row_keys(call["X_pool"])), Counter(_row_keys(call["X_labeled"]))
        assert pool_keys + labeled_keys == Counter(_row_keys(call["X_train"]))
    loop_fits = [f for f in fits if f["in_loop"]]
    assert loop_fits
    for fit in loop_fits:
        # Every model fit inside the loop (the round's, the influence head's, the last one) sees only
        # revealed items with their revealed labels.
        revealed = {key: label for key, label in zip(_row_keys(fit["X_train"][fit["revealed"]]), fit["answers"])}
        for key, label in zip(_row_keys(fit["X"]), fit["y"]):
            assert revealed.get(key) == label
    # The only fits before any oracle exists are the full-data references, one per seed.
    assert sum(not f["in_loop"] for f in fits) == len(experiment.config.seeds)


def test_the_oracle_is_asked_once_per_round_and_the_budget_is_the_total(spied):
    experiment, calls, _, _ = spied
    by_run = Counter((r["strategy"], r["seed"]) for r in experiment.rows)
    assert set(by_run) == {(s, seed) for s in STRATEGIES for seed in (0, 1)}
    for (strategy, seed), n_rows in by_run.items():
        n_labels = [r["n_labels"] for r in experiment.rows if r["strategy"] == strategy and r["seed"] == seed]
        # 20, 30, 40, 50, then a short last batch of 5 to land on the budget exactly.
        assert n_labels == [20, 30, 40, 50, 55]
    assert max(r["n_labels"] for r in experiment.rows) == 55
    # The strategy picks the batch but its audits (uniform draws, assay.learning.queueing's rule).
    from assay.learning.queueing import audits_due

    expected, n_audit = [], 0
    for n, batch in ((20, 10), (30, 10), (40, 10), (50, 5)):
        due = audits_due(n, n_audit, batch, experiment.config.audit_share)
        expected.append(batch - due)
        n_audit += due
    assert [c["batch_size"] for c in calls[:4]] == expected == [9, 9, 10, 5]
    assert [r["n_audit"] for r in experiment.rows if (r["strategy"], r["seed"]) == (STRATEGIES[0], 0)] == \
        [0, 1, 2, 2, 2]


def test_strategies_share_the_test_split_and_initial_set_of_a_seed(spied):
    experiment, calls, _, evaluations = spied
    first_rounds = [c for c in calls if len(c["revealed"]) == experiment.config.initial]
    assert len(first_rounds) == len(STRATEGIES) * 2
    initial = {}
    for c in first_rounds:
        initial.setdefault(c["X_train"].tobytes(), set()).add(c["X_labeled"].tobytes() + str(c["y_labeled"]).encode())
    assert len(initial) == 2 and all(len(v) == 1 for v in initial.values())
    tests = {}
    for oracle, X_test, y_test in evaluations:
        if oracle is None:  # the full-data reference of a seed
            continue
        tests.setdefault(id(oracle), set()).add((X_test, y_test))
    splits = {frozenset(v) for v in tests.values()}
    assert all(len(v) == 1 for v in tests.values())
    assert len(splits) == 2  # one per seed, whatever the strategy
    for setup in experiment.setups:
        assert setup.n_train + setup.n_test == 400 and abs(setup.n_test - 0.3 * 400) <= 1


def test_a_strategy_that_repeats_an_item_is_refused(monkeypatch, iris_dataset):
    real_run_round = run_mod.run_round

    def repeating(**kw):
        result = real_run_round(**kw)
        result.indices[:] = result.indices[0]
        return result

    monkeypatch.setattr(run_mod, "run_round", repeating)
    experiment = run_experiment(iris_dataset, Config(strategies=("margin", "random"), initial=6, batch=3, budget=12,
                                                     seeds=(0,)))
    assert len(experiment.failures) == 2
    assert experiment.failures[0].startswith("margin, seed 0: RuntimeError: strategy 'margin' returned")
    assert experiment.rows == []


def test_the_oracle_hands_out_only_what_is_asked():
    oracle = Oracle(np.array(["a", "b", "c", "d"], dtype=object))
    assert oracle.reveal([2, 0]) == ["c", "a"]
    assert oracle.revealed.tolist() == [2, 0] and oracle.n_revealed == 2
    with pytest.raises(ValueError, match="already labeled"):
        oracle.reveal([0])
    with pytest.raises(ValueError, match="twice"):
        oracle.reveal([1, 1])
    with pytest.raises(IndexError):
        oracle.reveal([4])
    assert oracle.n_revealed == 2
    assert not [name for name in vars(oracle) if "label" in name.lower() and not name.startswith("_Oracle")]


@pytest.fixture
def iris_dataset(iris_csv):
    return load_dataset(iris_csv, label_column="species", exclude_columns="id")

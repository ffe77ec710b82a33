"""Temperature scaling from first guesses (assay.evaluation.temperature), against full-vector computations
done here with scipy, and the estimate it feeds on a pool whose model is underconfident (issue 27)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from assay.evaluation import accuracy, temperature


def _full_nll_temperature(probs_M_C, y_M) -> float:
    """The maximum-likelihood temperature on the whole probability vectors, computed independently."""
    log_p = np.log(probs_M_C)

    def nll(log_t):
        return -log_softmax(log_p / np.exp(log_t), axis=1)[np.arange(len(y_M)), y_M].sum()

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def _world(n, n_classes, true_t, seed):
    """Logits whose softmax is the truth, a model that reports them at temperature ``true_t``, answers
    drawn from the truth."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, n_classes)) * 2.5
    truth = softmax(logits, axis=1)
    reported = softmax(logits / true_t, axis=1)
    y = np.array([rng.choice(n_classes, p=p) for p in truth])
    return truth, reported, y


def test_tempered_confidence_with_every_class_listed_is_exact():
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(50, 4)) * 2, axis=1)
    top = temperature.first_guesses(probs)
    for t in (0.3, 1.0, 2.5):
        want = softmax(np.log(probs) / t, axis=1).max(axis=1)
        np.testing.assert_allclose(temperature.tempered_confidence(top, 4, t), want, rtol=1e-9)


@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_fit_recovers_the_temperature_and_matches_the_full_vector_fit(true_t):
    truth, reported, y = _world(4000, 26, true_t, seed=1)
    top = temperature.first_guesses(reported)
    order = np.argsort(-reported, axis=1)[:, :temperature.TOP_K]
    hit = temperature.answer_rank(order.tolist(), y.tolist())
    got = temperature.fit_temperature(top, hit, 26, prior_sd=10.0)
    full = _full_nll_temperature(reported, y)
    # Reporting at temperature t, the truth is the report tempered by 1/t.
    assert got == pytest.approx(1 / true_t, rel=0.12)
    assert full == pytest.approx(1 / true_t, rel=0.05)
    # The first five guesses with the rest spread evenly come within a tenth of the whole vector's answer
    # (here the five hold about half the mass; an even rest tempers less than the real one, so the fit is
    # drawn a little towards 1).
    assert got == pytest.approx(full, rel=0.12)


def test_the_prior_holds_a_temperature_the_tests_cannot_see_near_one():
    # Two classes, every test at 0.5: any temperature fits them equally; the prior decides.
    top = np.tile([0.5, 0.5], (300, 1))
    hit = np.random.default_rng(2).integers(0, 2, size=300)
    assert temperature.fit_temperature(top, hit, 2) == pytest.approx(1.0, abs=1e-3)
    assert temperature.fit_temperature(np.zeros((0, 2)), [], 2) == 1.0


def test_answer_rank():
    assert temperature.answer_rank([["a", "b"], ["b", "a"], ["c"]], ["a", "a", "z"]).tolist() == [0, 1, -1]


def test_the_estimate_of_an_underconfident_model_trained_on_picks_is_not_held_at_its_confidence():
    # A 26-class pool whose model reports its probabilities at temperature 2 (underconfident); the tests are
    # margin picks (the smallest margins) plus 5% audits. Given the confidence alone the picks look about
    # calibrated and the Platt prior keeps the confident end where the model puts it: too low.
    truth, reported, _ = _world(6000, 26, 2.0, seed=3)
    rng = np.random.default_rng(4)
    true_accuracy = truth[np.arange(len(truth)), reported.argmax(axis=1)].mean()
    srt = -np.sort(-reported, axis=1)
    picks = np.argsort(srt[:, 0] - srt[:, 1])[:300]
    audits = rng.choice(np.setdiff1d(np.arange(6000), picks), size=15, replace=False)
    tested = np.concatenate([picks, audits])
    answers = np.array([rng.choice(26, p=truth[i]) for i in tested])
    order = np.argsort(-reported[tested], axis=1)[:, :temperature.TOP_K]
    hit = temperature.answer_rank(order.tolist(), answers.tolist())
    correct = answers == reported[tested].argmax(axis=1)
    audit = np.arange(len(tested)) >= len(picks)
    pool = np.setdiff1d(np.arange(6000), tested)
    top = temperature.first_guesses(reported)
    plain = accuracy.estimate(top[pool, 0], np.zeros(0), top[tested, 0], correct, audit, random_state=0)
    tempered = accuracy.estimate(top[pool], np.zeros((0, 5)), top[tested], correct, audit, served_hit_M=hit,
                                 n_classes=26, untempered=True, random_state=0)
    # The prior on log T (sd 0.2) keeps it a little short of the 0.5 that undoes the model's 2.
    assert 0.45 < tempered.temperature < 0.7
    assert tempered.candidates["untempered"][0] == pytest.approx(plain.accuracy)
    assert plain.accuracy < true_accuracy - 0.04
    assert abs(tempered.accuracy - true_accuracy) < 0.02, (tempered.accuracy, true_accuracy, plain.accuracy)


def test_served_guesses_take_old_servings_as_their_confidence_alone():
    from assay.learning.evaluate import served_guesses

    tests = [{"top": [["b", 0.6], ["a", 0.3], ["c", 0.1]], "predicted": "b", "confidence": 0.6, "label": "a"},
             # Recorded before the first guesses were kept: the confidence alone, its rank known only if right.
             {"top": None, "predicted": "c", "confidence": 0.7, "label": "c"},
             {"top": None, "predicted": "c", "confidence": 0.5, "label": "a"}]
    top, hit = served_guesses(tests, 3)
    np.testing.assert_allclose(top, [[0.6, 0.3, 0.1], [0.7, 0, 0], [0.5, 0, 0]])
    assert hit.tolist() == [1, 0, -1]

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from assay.strategies import StrategyInputError
from assay.strategies.stochastic import stochastic_batch
from tests.timing import best_time

MODES = ("power", "softmax", "softrank")
SCORES = np.array([0.2, 1.0, 0.5, 1.0, 1.6])  # a tie (items 1 and 3) exercises softrank's index order


def target_weights(scores, mode, beta):
    """The per-draw weights, written out from the definitions."""
    if mode == "power":
        return scores ** beta
    if mode == "softmax":
        return np.exp(beta * scores)
    # rank 1 = highest score; equal scores ranked by index
    ranks = np.empty(len(scores))
    for rank, index in enumerate(sorted(range(len(scores)), key=lambda i: (-scores[i], i)), start=1):
        ranks[index] = rank
    return ranks ** -beta


def sequence_probs(weights, batch_size):
    """P(ordered draw sequence) for sequential sampling without replacement, by enumeration."""
    probs = {}
    for seq in itertools.permutations(range(len(weights)), batch_size):
        p, left = 1.0, float(np.sum(weights))
        for i in seq:
            p *= weights[i] / left
            left -= weights[i]
        probs[seq] = p
    return probs


def inclusion_probs(weights, batch_size):
    incl = np.zeros(len(weights))
    for seq, p in sequence_probs(weights, batch_size).items():
        incl[list(seq)] += p
    return incl


def draw_many(scores, batch_size, n_draws, seed, **kwargs):
    gen = np.random.default_rng(seed)
    return [tuple(stochastic_batch(scores, batch_size, random_state=gen, **kwargs).tolist())
            for _ in range(n_draws)]


@pytest.mark.parametrize("mode", MODES)
def test_single_draw_matches_target(mode):
    beta = 1.5
    p = target_weights(SCORES, mode, beta)
    p = p / p.sum()
    n = 6000
    counts = np.bincount([d[0] for d in draw_many(SCORES, 1, n, seed=1, mode=mode, beta=beta)],
                         minlength=len(SCORES))
    assert chisquare(counts, p * n).pvalue > 0.001
    # Softrank must separate the tied scores: item 1 (rank 2) beats item 3 (rank 3).
    if mode == "softrank":
        assert p[1] > p[3]


@pytest.mark.parametrize("mode", MODES)
def test_batches_match_sequential_sampling_without_replacement(mode):
    beta, n = 1.2, 6000
    weights = target_weights(SCORES, mode, beta)
    draws = draw_many(SCORES, 3, n, seed=2, mode=mode, beta=beta)
    assert all(len(set(d)) == 3 for d in draws)

    incl = inclusion_probs(weights, 3)
    freq = np.bincount(np.concatenate(draws), minlength=len(SCORES)) / n
    sigma = np.sqrt(incl * (1 - incl) / n)
    assert np.all(np.abs(freq - incl) <= 4.5 * sigma + 1e-9), (freq, incl)

    # The order is the draw order: the (first, second) pairs follow the sequential law too.
    pair_probs = sequence_probs(weights, 2)
    pairs = Counter(d[:2] for d in draws)
    keys = sorted(pair_probs)
    assert chisquare([pairs[k] for k in keys], [pair_probs[k] * n for k in keys]).pvalue > 0.001


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scores", [SCORES, np.array([0.0, 0.0, 3.0, 0.0, 9.0])])
def test_beta_zero_is_uniform(mode, scores):
    n = 5000
    counts = np.bincount([d[0] for d in draw_many(scores, 1, n, seed=3, mode=mode, beta=0.0)],
                         minlength=len(scores))
    assert chisquare(counts).pvalue > 0.001


@pytest.mark.parametrize("mode, beta", [("power", 1e4), ("softmax", 1e4), ("softrank", 1e3)])
def test_large_beta_gives_top_k(mode, beta, rng):
    scores = rng.permutation(np.linspace(0.01, 1.0, 200))
    expected = np.argsort(-scores)[:10]
    for seed in range(5):
        np.testing.assert_array_equal(stochastic_batch(scores, 10, mode=mode, beta=beta, random_state=seed),
                                      expected)


def test_power_mode_fills_with_zero_score_items_uniformly():
    scores = np.array([0.0, 0.0, 0.0, 1.0, 2.0])
    n = 6000
    draws = draw_many(scores, 4, n, seed=4, mode="power")
    # Both positive items come first, in the weighted order (4 first with probability 2/3) ...
    assert all(set(d[:2]) == {3, 4} for d in draws)
    firsts = Counter(d[0] for d in draws)
    assert chisquare([firsts[4], firsts[3]], [n * 2 / 3, n / 3]).pvalue > 0.001
    # ... then two of the three zero-score items, uniformly.
    fill = Counter(frozenset(d[2:]) for d in draws)
    assert len(fill) == 3
    assert chisquare(list(fill.values())).pvalue > 0.001


def test_power_mode_never_draws_zero_scores_while_positives_remain(rng):
    scores = np.where(rng.random(300) < 0.5, 0.0, rng.random(300))
    positive = set(np.flatnonzero(scores > 0).tolist())
    for seed in range(20):
        assert set(stochastic_batch(scores, 50, random_state=seed).tolist()) <= positive


def test_all_zero_scores_in_power_mode_are_uniform():
    idx = stochastic_batch(np.zeros(6), 6, random_state=0)
    assert sorted(idx.tolist()) == list(range(6))


def test_batch_equals_pool_is_a_permutation(rng):
    scores = rng.random(50)
    for mode in MODES:
        idx = stochastic_batch(scores, 50, mode=mode, random_state=0)
        assert sorted(idx.tolist()) == list(range(50))


def test_deterministic_for_a_seed_different_across_seeds(rng, global_rng_untouched):
    scores = rng.random(1000)
    for mode in MODES:
        a = stochastic_batch(scores, 20, mode=mode, random_state=11)
        b = stochastic_batch(scores, 20, mode=mode, random_state=11)
        c = stochastic_batch(scores, 20, mode=mode, random_state=12)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        assert a.dtype == np.intp and len(set(a.tolist())) == 20


def test_accepts_a_generator_and_advances_it(rng, global_rng_untouched):
    scores = rng.random(1000)
    gen = np.random.default_rng(5)
    first = stochastic_batch(scores, 10, random_state=gen)
    second = stochastic_batch(scores, 10, random_state=gen)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, stochastic_batch(scores, 10, random_state=np.random.default_rng(5)))


def test_none_seed_leaves_the_global_rng_alone(rng, global_rng_untouched):
    for mode in MODES:
        assert len(stochastic_batch(rng.random(100), 5, mode=mode, random_state=None)) == 5


def test_huge_beta_does_not_overflow():
    # beta * (s - max s) would be -inf for the last two items; they must still come in score order.
    scores = np.array([3.0, 2.0, 0.0, 1.0])
    for mode in MODES:
        for seed in range(10):
            np.testing.assert_array_equal(stochastic_batch(scores, 4, mode=mode, beta=1e308, random_state=seed),
                                          [0, 1, 3, 2])


def test_huge_equal_scores_still_tie_randomly():
    # 1e300 + Gumbel noise == 1e300: without shifting, the tie would always go the same way.
    scores = np.array([0.0, 1e300, 1e300, 1e299])
    firsts = Counter(stochastic_batch(scores, 1, mode="softmax", random_state=seed)[0] for seed in range(200))
    assert set(firsts) == {1, 2} and min(firsts.values()) > 60


def test_signed_scores_work_in_softmax_and_softrank():
    scores = np.array([-3.0, -1.0, -2.0])
    for mode in ("softmax", "softrank"):
        assert len(stochastic_batch(scores, 2, mode=mode, random_state=0)) == 2


def test_input_not_mutated(rng, frozen):
    scores = rng.random(30)
    kept = frozen(scores)
    for mode in MODES:
        stochastic_batch(kept, 5, mode=mode, random_state=0)
    np.testing.assert_array_equal(kept, scores)


@pytest.mark.parametrize(
    "scores, batch_size, kwargs, message",
    [
        (np.array([0.5, -0.1, 1.0]), 1, {"mode": "power"}, "scores >= 0"),
        (np.array([0.5, 0.1]), 1, {"mode": "topk"}, "unknown mode"),
        (np.array([0.5, 0.1]), 1, {"beta": -1.0}, "beta"),
        (np.array([0.5, 0.1]), 1, {"beta": np.nan}, "beta"),
        (np.array([0.5, 0.1]), 1, {"beta": np.inf}, "beta"),
        (np.array([0.5, 0.1]), 1, {"beta": "1"}, "beta"),
        (np.array([0.5, np.nan]), 1, {}, "NaN"),
        (np.array([0.5, np.inf]), 1, {"mode": "softmax"}, "NaN or infinite"),
        (np.ones((2, 2)), 1, {}, "1 dimensions"),
        (np.ones(3), 4, {}, "larger than the pool"),
        (np.ones(0), 1, {}, "empty"),
        (np.ones(3), 0, {}, "at least 1"),
        (np.ones(3), 1, {"random_state": 1.5}, "random_state"),
    ],
)
def test_bad_input_refused(scores, batch_size, kwargs, message):
    with pytest.raises(StrategyInputError, match=message):
        stochastic_batch(scores, batch_size, **kwargs)


def test_fast_on_a_large_pool(rng):
    scores = rng.random(100_000)
    sort = best_time(lambda: np.argsort(scores))  # ~1.5 ms on a quiet machine
    for mode in MODES:
        stochastic_batch(scores, 100, mode=mode, random_state=0)
        took = best_time(lambda: stochastic_batch(scores, 100, mode=mode, random_state=0))
        # 2-5 sorts' time (softrank ~15, it sorts); the bound (100 sorts, ~0.15 s) only catches a Python loop
        # over items, measured against a sort in the same run, so at any load.
        assert took < 100 * sort, (mode, took, sort)

import itertools

import numpy as np
import pytest

import assay.strategies.bald as bald_module
from assay.strategies import StrategyInputError
from assay.strategies.bald import bald, batchbald, conditional_entropy, greedy_batchbald
from tests.timing import best_time


# -- brute force, written independently of the module under test ------------

def _entropy(p):
    p = np.asarray(p, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def brute_joint_mi(probs_N_K_C, items):
    """I(y_items; theta) by enumerating every label configuration of the items."""
    _, n_samples, n_classes = probs_N_K_C.shape
    joint = 0.0
    for config in itertools.product(range(n_classes), repeat=len(items)):
        lik_K = np.ones(n_samples)
        for item, label in zip(items, config):
            lik_K = lik_K * probs_N_K_C[item, :, label]
        joint += _entropy([lik_K.mean()])
    conditional = sum(np.mean([_entropy(probs_N_K_C[i, k]) for k in range(n_samples)]) for i in items)
    return joint - conditional


def brute_greedy(probs_N_K_C, batch_size):
    chosen, values = [], []
    for _ in range(batch_size):
        gains = {n: brute_joint_mi(probs_N_K_C, chosen + [n])
                 for n in range(len(probs_N_K_C)) if n not in chosen}
        best = max(gains, key=gains.get)
        chosen.append(best)
        values.append(gains[best])
    return chosen, values


@pytest.fixture
def small_case(make_probs):
    """C=3, K=8, 10 items: small enough to enumerate every batch labeling."""
    return make_probs(10, 8, 3, concentration=0.6)


# -- BALD ---------------------------------------------------------------------

def test_bald_zero_when_samples_agree(make_probs):
    probs = np.repeat(make_probs(20, 1, 5), 7, axis=1)
    np.testing.assert_allclose(bald(probs), 0.0, atol=1e-12)
    assert np.all(bald(probs) >= 0.0)


@pytest.mark.parametrize("n_classes, n_samples", [(2, 2), (3, 6), (10, 20)])
def test_bald_is_ln_c_when_confident_samples_disagree_uniformly(n_classes, n_samples):
    probs = np.zeros((1, n_samples, n_classes))
    probs[0, np.arange(n_samples), np.arange(n_samples) % n_classes] = 1.0
    np.testing.assert_allclose(bald(probs), [np.log(n_classes)], rtol=1e-12)


def test_bald_matches_definition_and_baal(make_probs):
    probs = make_probs(300, 9, 4, concentration=0.3)
    probs[::7, 3] = [0.0, 0.0, 1.0, 0.0]
    mean = probs.mean(axis=1)
    expected = np.array([_entropy(m) for m in mean]) - np.array(
        [np.mean([_entropy(pk) for pk in p]) for p in probs])
    np.testing.assert_allclose(bald(probs), np.maximum(expected, 0), atol=1e-12)
    np.testing.assert_allclose(conditional_entropy(probs),
                               [np.mean([_entropy(pk) for pk in p]) for p in probs], atol=1e-12)
    heuristics = pytest.importorskip("baal.active.heuristics")
    # baal wants [N, C, K].
    np.testing.assert_allclose(bald(probs), heuristics.BALD().compute_score(probs.transpose(0, 2, 1)), atol=1e-12)


def test_bald_blocks_and_float32(make_probs, monkeypatch):
    probs = make_probs(123, 5, 3)
    whole = bald(probs)
    monkeypatch.setattr(bald_module, "_BLOCK_ELEMENTS", 40)  # several items per block, ragged last block
    np.testing.assert_allclose(bald(probs), whole, atol=1e-13)
    out32 = bald(probs.astype(np.float32))
    assert out32.dtype == np.float64
    np.testing.assert_allclose(out32, whole, atol=1e-5)


def test_bald_bounded(make_probs):
    probs = make_probs(500, 4, 6, concentration=0.2)
    scores = bald(probs)
    assert np.all(scores >= 0) and np.all(scores <= np.log(4) + 1e-12)


# -- BatchBALD, exact ---------------------------------------------------------

def test_bald_is_the_single_item_mutual_information(small_case):
    expected = [brute_joint_mi(small_case, [i]) for i in range(len(small_case))]
    np.testing.assert_allclose(bald(small_case), expected, rtol=1e-12)


def test_batchbald_matches_brute_force_greedy(small_case):
    expected_idx, expected_mi = brute_greedy(small_case, 3)
    idx, mi = greedy_batchbald(small_case, 3)
    assert idx.tolist() == expected_idx
    np.testing.assert_allclose(mi, expected_mi, rtol=1e-10)
    assert batchbald(small_case, 3).tolist() == expected_idx


def test_batchbald_avoids_a_duplicate_that_top_k_bald_takes():
    # K=9 samples, each sure of one class. Item 0 (and its copy, item 1) splits the samples by
    # k % 3, item 2 by k // 3, a little less sharply. Once item 0's label is known its copy's
    # label is too, so the copy adds almost nothing; item 2 still adds ~ln 3.
    k = np.arange(9)
    split_a = np.eye(3)[k % 3] * 0.98 + 0.02 / 3
    split_b = np.eye(3)[k // 3] * 0.9 + 0.1 / 3
    probs = np.stack([split_a, split_a, split_b, np.full((9, 3), 1 / 3)])
    scores = bald(probs)
    assert scores[2] < scores[0] == scores[1]
    assert set(np.argsort(-scores, kind="stable")[:2].tolist()) == {0, 1}
    chosen = batchbald(probs, 2).tolist()
    assert chosen == [0, 2]
    assert brute_greedy(probs, 2)[0] == chosen


def test_batchbald_first_pick_is_top_bald(make_probs):
    probs = make_probs(40, 6, 4)
    assert batchbald(probs, 1)[0] == np.argmax(bald(probs))
    assert batchbald(probs, 4)[0] == np.argmax(bald(probs))


def test_batchbald_agrees_with_batchbald_redux(small_case):
    torch = pytest.importorskip("torch")
    redux = pytest.importorskip("batchbald_redux.batchbald")
    log_probs = torch.from_numpy(np.log(small_case))
    theirs = redux.get_batchbald_batch(log_probs, 3, num_samples=100_000, dtype=torch.double)
    idx, mi = greedy_batchbald(small_case, 3)
    assert idx.tolist() == theirs.indices
    np.testing.assert_allclose(mi, theirs.scores, rtol=1e-9)


# -- BatchBALD, sampled -------------------------------------------------------

def test_sampled_regime_agrees_with_exact(small_case):
    batch = 4
    exact_idx, exact_mi = greedy_batchbald(small_case, batch)
    # A budget of K entries holds only the empty joint, so every later step samples.
    runs = [greedy_batchbald(small_case, batch, num_samples=4000, random_state=seed, max_joint_entries=8)
            for seed in range(3)]
    for idx, mi in runs:
        assert idx[0] == exact_idx[0] == np.argmax(bald(small_case))
        truth = [brute_joint_mi(small_case, idx[:t + 1].tolist()) for t in range(batch)]
        np.testing.assert_allclose(mi, truth, atol=0.04)
        # Sampling really happened: the estimates are close, not identical.
        assert np.max(np.abs(mi[1:] - truth[1:])) > 1e-9
        # The sampled greedy batch is about as informative as the exact greedy one.
        assert brute_joint_mi(small_case, idx.tolist()) >= exact_mi[-1] - 0.04
    assert len({tuple(mi.round(12)) for _, mi in runs}) == len(runs)


def test_switch_from_exact_to_sampled_mid_batch(small_case):
    # 3**2 configurations * K=8 = 72 fit, 3**3 * 8 = 216 do not: steps 0-2 exact, step 3 sampled.
    idx, mi = greedy_batchbald(small_case, 4, num_samples=4000, random_state=0, max_joint_entries=100)
    exact_idx, exact_mi = greedy_batchbald(small_case, 4)
    assert idx[:3].tolist() == exact_idx[:3].tolist()
    np.testing.assert_allclose(mi[:3], exact_mi[:3], rtol=1e-10)
    truth = brute_joint_mi(small_case, idx.tolist())
    assert abs(mi[3] - truth) < 0.04 and mi[3] != pytest.approx(truth, abs=1e-9)


def test_sampled_regime_deterministic_under_seed(small_case, global_rng_untouched):
    kwargs = dict(num_samples=500, max_joint_entries=8)
    a = greedy_batchbald(small_case, 5, random_state=7, **kwargs)
    b = greedy_batchbald(small_case, 5, random_state=7, **kwargs)
    c = greedy_batchbald(small_case, 5, random_state=np.random.default_rng(7), **kwargs)
    for x, y in [(a, b), (a, c)]:
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    d = greedy_batchbald(small_case, 5, random_state=8, **kwargs)
    assert not np.array_equal(a[1], d[1])


def test_large_batch_does_not_underflow(make_probs):
    # Peaked probabilities over many items: products of likelihoods would underflow to 0.
    probs = make_probs(60, 10, 5, concentration=0.05)
    probs = np.clip(probs, 1e-30, None)
    probs /= probs.sum(axis=2, keepdims=True)
    idx, mi = greedy_batchbald(probs, 60, num_samples=300, random_state=0)
    assert sorted(idx.tolist()) == list(range(60))
    assert np.all(np.isfinite(mi))
    assert mi[-1] <= np.log(10) + 0.1


def test_batch_equals_pool(make_probs):
    probs = make_probs(7, 4, 3)
    idx = batchbald(probs, 7, num_samples=200, random_state=0)
    assert sorted(idx.tolist()) == list(range(7))
    assert idx.dtype.kind == "i"


def test_batchbald_inputs_not_mutated(small_case, frozen):
    kept = frozen(small_case)
    batchbald(kept, 3, num_samples=200, random_state=0, max_joint_entries=8)
    bald(kept)
    np.testing.assert_array_equal(kept, small_case)


# -- bad input ----------------------------------------------------------------

@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((4, 3), 1 / 3), "3 dimensions"),
        (np.full((2, 4, 3, 1), 1 / 3), "3 dimensions"),
        (np.where(np.arange(24).reshape(2, 4, 3) == 5, np.nan, 1 / 3), "NaN"),
        (np.tile([1.2, -0.2, 0.0], (2, 4, 1)), "negative"),
        (np.tile([2.0, 0.5, -0.5], (2, 4, 1)) + 1.0, "sum to 1"),
    ],
)
def test_bad_probabilities_refused(bad, message):
    with pytest.raises(StrategyInputError, match=message):
        bald(bad)
    with pytest.raises(StrategyInputError, match=message):
        batchbald(bad, 1)


@pytest.mark.parametrize(
    "n_items, batch_size, kwargs, message",
    [
        (5, 6, {}, "larger than the pool"),
        (0, 1, {}, "empty"),
        (5, 0, {}, "at least 1"),
        (5, 2.0, {}, "integer"),
        (5, 2, {"num_samples": 0}, "num_samples"),
        (5, 2, {"max_joint_entries": -1}, "max_joint_entries"),
        (5, 2, {"random_state": "seed"}, "random_state"),
    ],
)
def test_bad_batch_arguments_refused(n_items, batch_size, kwargs, message):
    probs = np.full((n_items, 4, 3), 1 / 3)
    with pytest.raises(StrategyInputError, match=message):
        batchbald(probs, batch_size, **kwargs)


def test_empty_pool_bald_scores_are_empty():
    assert bald(np.empty((0, 4, 3))).shape == (0,)


def test_bald_fast_on_a_large_pool(make_probs):
    probs = make_probs(20_000, 20, 10)
    bald(probs)
    took = best_time(lambda: bald(probs))
    # ~10 ms in practice, a quarter of a Python loop that makes one numpy call per item (the least a per-item
    # loop would do): the bound only catches a per-item Python loop, at any load.
    per_item = best_time(lambda: [item.max() for item in probs], repeat=3)
    assert took < per_item, (took, per_item)

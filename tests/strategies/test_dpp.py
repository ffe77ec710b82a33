import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from assay.strategies import StrategyInputError, dpp

REPO = Path(__file__).resolve().parents[2]


def naive_greedy(kernel, batch_size):
    """Greedy MAP by brute force: each step recomputes log det of every candidate set."""
    chosen = []
    for _ in range(batch_size):
        best, best_logdet = None, -np.inf
        for i in range(len(kernel)):
            if i in chosen:
                continue
            idx = chosen + [i]
            sign, logdet = np.linalg.slogdet(kernel[np.ix_(idx, idx)])
            if sign > 0 and logdet > best_logdet:
                best, best_logdet = i, logdet
        chosen.append(best)
    return np.array(chosen)


def random_psd(rng, n, rank):
    A = rng.normal(size=(n, rank)) * rng.uniform(0.2, 2.0, size=(n, 1))
    return A @ A.T


def explicit_kernel(embeddings, quality):
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
    sim = unit @ unit.T
    np.fill_diagonal(sim, 1.0)  # the documented convention, also for zero rows
    return quality[:, None] * sim * quality[None, :]


@pytest.mark.parametrize("seed", range(6))
def test_greedy_map_matches_naive_logdet_greedy(seed):
    rng = np.random.default_rng(seed)
    kernel = random_psd(rng, 30, 40)
    got = dpp.greedy_map(kernel, 8)
    np.testing.assert_array_equal(got, naive_greedy(kernel, 8))


def test_greedy_map_matches_naive_on_low_rank_kernel_up_to_its_rank():
    rng = np.random.default_rng(11)
    kernel = random_psd(rng, 25, 9)
    np.testing.assert_array_equal(dpp.greedy_map(kernel, 9), naive_greedy(kernel, 9))


def test_greedy_map_does_not_modify_the_kernel():
    rng = np.random.default_rng(3)
    kernel = random_psd(rng, 20, 20)
    before = kernel.copy()
    dpp.greedy_map(kernel, 6)
    np.testing.assert_array_equal(kernel, before)


def test_greedy_map_accepts_float32_and_lists():
    rng = np.random.default_rng(4)
    kernel = random_psd(rng, 15, 15)
    expected = dpp.greedy_map(kernel, 5)
    np.testing.assert_array_equal(dpp.greedy_map(kernel.tolist(), 5), expected)
    k32 = kernel.astype(np.float32)
    np.testing.assert_array_equal(dpp.greedy_map((k32 + k32.T) / 2, 5), expected)


@pytest.mark.parametrize("seed", range(3))
def test_select_equals_greedy_map_on_the_explicit_kernel(seed):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(40, 10))
    emb[7] = 0.0  # a featureless row: similar only to itself
    quality = rng.uniform(0.1, 1.0, size=40)
    got = dpp.select(emb, 10, quality_N=quality)
    np.testing.assert_array_equal(got, dpp.greedy_map(explicit_kernel(emb, quality), 10))
    np.testing.assert_array_equal(got, naive_greedy(explicit_kernel(emb, quality), 10))


def test_select_equals_greedy_map_beyond_the_rank():
    rng = np.random.default_rng(5)
    emb = rng.normal(size=(30, 3))
    quality = rng.uniform(0.1, 1.0, size=30)
    got = dpp.select(emb, 10, quality_N=quality)
    np.testing.assert_array_equal(got, dpp.greedy_map(explicit_kernel(emb, quality), 10))


def test_select_without_quality_is_cosine_only():
    rng = np.random.default_rng(6)
    emb = rng.normal(size=(30, 6))
    scaled = emb * rng.uniform(0.1, 10.0, size=(30, 1))  # row norms must not matter
    np.testing.assert_array_equal(dpp.select(scaled, 6), dpp.select(emb, 6, quality_N=np.ones(30)))


def test_orthogonal_items_are_taken_by_quality():
    quality = np.array([0.3, 0.9, 0.1, 0.5, 0.7])
    np.testing.assert_array_equal(dpp.select(np.eye(5), 5, quality_N=quality), [1, 4, 3, 0, 2])


def test_select_prefers_a_new_direction_over_a_near_copy():
    emb = np.array([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0]])
    quality = np.array([1.0, 0.99, 0.5])
    # Item 1 has higher quality than item 2 but nearly repeats item 0.
    np.testing.assert_array_equal(dpp.select(emb, 2, quality_N=quality), [0, 2])


def test_low_dimensional_embeddings_still_fill_the_batch():
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(50, 3))
    got = dpp.select(emb, 10)
    assert len(got) == 10 and len(set(got.tolist())) == 10
    assert got.min() >= 0 and got.max() < 50
    # The first three span the space: a non-zero volume.
    first = emb[got[:3]] / np.linalg.norm(emb[got[:3]], axis=1, keepdims=True)
    assert abs(np.linalg.det(first)) > 1e-3


def test_duplicated_rows_give_one_of_each_before_repeating():
    rng = np.random.default_rng(8)
    base = rng.normal(size=(5, 8))
    emb = np.repeat(base, 3, axis=0)  # groups of three identical rows
    group = np.repeat(np.arange(5), 3)
    got = dpp.select(emb, 10)
    assert len(set(got.tolist())) == 10
    assert sorted(group[got[:5]]) == list(range(5))
    assert sorted(group[got[5:]]) == list(range(5))


def test_zero_quality_items_come_last_in_index_order():
    rng = np.random.default_rng(9)
    emb = rng.normal(size=(12, 4))
    quality = rng.uniform(0.5, 1.0, size=12)
    zero = [1, 4, 5, 8, 11]
    quality[zero] = 0.0
    got = dpp.select(emb, 10, quality_N=quality)
    assert len(set(got.tolist())) == 10
    assert set(got[:7].tolist()) == set(range(12)) - set(zero)
    np.testing.assert_array_equal(got[7:], [1, 4, 5])


def test_rank_deficient_and_zero_kernels():
    rng = np.random.default_rng(10)
    kernel = random_psd(rng, 20, 3)
    got = dpp.greedy_map(kernel, 10)
    assert len(set(got.tolist())) == 10
    np.testing.assert_array_equal(dpp.greedy_map(np.zeros((6, 6)), 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(dpp.greedy_map(np.ones((4, 4)), 4), [0, 1, 2, 3])


def test_batch_equal_to_pool_returns_a_permutation():
    rng = np.random.default_rng(12)
    emb = rng.normal(size=(9, 2))
    assert sorted(dpp.select(emb, 9).tolist()) == list(range(9))


def test_large_pool_never_builds_the_n_by_n_kernel():
    rng = np.random.default_rng(13)
    n, d, b = 100_000, 64, 100
    emb = rng.normal(size=(n, d)).astype(np.float32)
    quality = rng.uniform(0.05, 1.0, size=n)
    tracemalloc.start()
    try:
        got = dpp.select(emb, b, quality_N=quality)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(set(got.tolist())) == b
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB (N*N*8 would be {n * n * 8 / 1e9:.0f} GB)"


@pytest.mark.parametrize(
    "kernel, batch",
    [
        (np.ones((3, 4)), 2),  # not square
        (np.array([[1.0, 0.5], [0.1, 1.0]]), 1),  # not symmetric
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), 1),  # not finite
        (np.array([[-1.0, 0.0], [0.0, 1.0]]), 1),  # negative diagonal
        (np.eye(3), 4),  # batch larger than the pool
        (np.eye(3), 0),
        (np.eye(3), 1.5),
        (np.zeros((0, 0)), 1),  # empty
        (np.ones(3), 1),  # not a matrix
    ],
)
def test_greedy_map_rejects_bad_input(kernel, batch):
    with pytest.raises(StrategyInputError):
        dpp.greedy_map(kernel, batch)


@pytest.mark.parametrize(
    "emb, batch, quality",
    [
        (np.ones((5, 2)), 2, -np.ones(5)),  # negative quality
        (np.ones((5, 2)), 2, np.ones(4)),  # quality of the wrong length
        (np.ones((5, 2)), 2, np.array([1.0, np.nan, 1.0, 1.0, 1.0])),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), 1, None),
        (np.ones((5, 2)), 6, None),
        (np.zeros((0, 3)), 1, None),
        (np.ones(5), 1, None),
    ],
)
def test_select_rejects_bad_input(emb, batch, quality):
    with pytest.raises(StrategyInputError):
        dpp.select(emb, batch, quality_N=quality)


def test_select_does_not_modify_its_inputs():
    rng = np.random.default_rng(14)
    emb = rng.normal(size=(20, 5))
    quality = rng.uniform(size=20)
    emb_before, quality_before = emb.copy(), quality.copy()
    dpp.select(emb, 5, quality_N=quality)
    np.testing.assert_array_equal(emb, emb_before)
    np.testing.assert_array_equal(quality, quality_before)


def test_dpp_module_does_not_import_torch():
    code = (
        "import sys\n"
        "import assay.strategies.dpp, assay.strategies.influence\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

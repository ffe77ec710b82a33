"""Shared fixtures for the strategy tests: random probability arrays and input guards."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240501)


@pytest.fixture
def make_probs(rng):
    """``make_probs(*shape, concentration=0.5)``: rows from a symmetric Dirichlet over the last axis."""

    def make(*shape: int, concentration: float = 0.5) -> np.ndarray:
        return rng.dirichlet(np.full(shape[-1], concentration), size=shape[:-1])

    return make


@pytest.fixture
def frozen():
    """``frozen(array)``: a read-only copy, so any in-place write by the code under test raises."""

    def freeze(array) -> np.ndarray:
        out = np.array(array, copy=True)
        out.setflags(write=False)
        return out

    return freeze


@pytest.fixture
def global_rng_untouched():
    """Fails the test if the code under test draws from (or reseeds) numpy's global RNG."""
    before = np.random.get_state()
    yield
    after = np.random.get_state()
    assert before[0] == after[0] and before[2:] == after[2:], "the global numpy RNG was used"
    np.testing.assert_array_equal(before[1], after[1], err_msg="the global numpy RNG was used")

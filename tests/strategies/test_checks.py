"""Input checks that strategies share, including BALD's in-block form."""
from __future__ import annotations

import numpy as np
import pytest

from assay.strategies import StrategyInputError
from assay.strategies.bald import bald
from assay.strategies.uncertainty import entropy


def _samples():
    return np.random.default_rng(0).dirichlet(np.ones(4), size=(50, 6))


@pytest.mark.parametrize("score", [bald, lambda p: entropy(p[:, 3, :])])
def test_a_negative_entry_in_a_row_that_still_sums_to_one_is_refused(score):
    probs = _samples()
    value = probs[5, 3, 2]
    probs[5, 3, 2] = -0.05
    probs[5, 3, 1] += value + 0.05  # the row still sums to 1
    with pytest.raises(StrategyInputError, match="negative"):
        score(probs)


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN"), (np.inf, "NaN or infinite"), (-np.inf, "NaN or infinite")])
def test_non_finite_entries_are_refused_by_bald(bad, message):
    probs = _samples()
    probs[7, 1, 1] = bad
    with pytest.raises(StrategyInputError, match=message):
        bald(probs)


def test_rows_off_by_more_than_the_tolerance_are_refused_with_the_worst_sum():
    probs = _samples()
    probs[2, 2] *= 1.01
    with pytest.raises(StrategyInputError, match=r"worst row sums to 1\.01"):
        bald(probs)
    probs = _samples()
    probs[2, 2] *= 1.00001  # float32 drift is fine
    assert bald(probs).shape == (50,)

"""Audit positions keep the audits at their share of the labels; audit picks are uniform over the free pool."""
import numpy as np
import pytest

from assay.learning import queueing


@pytest.mark.parametrize("share", [0.05, 0.1, 0.25])
def test_audits_track_their_share_in_any_batching(share):
    n_labels = n_audit = 0
    rng = np.random.default_rng(0)
    while n_labels < 1_000:
        batch = int(rng.integers(1, 30))
        due = queueing.audits_due(n_labels, n_audit, batch, share)
        n_labels += batch
        n_audit += due
        assert np.floor(share * n_labels + 1e-9) == n_audit  # never behind, never ahead


def test_no_audits_at_share_zero_and_positions_are_spread():
    assert not queueing.audit_flags(0, 0, 100, 0.0).any()
    flags = queueing.audit_flags(0, 0, 100, 0.05)
    assert np.flatnonzero(flags).tolist() == [19, 39, 59, 79, 99]


def test_draws_are_uniform_and_avoid_the_strategy_picks():
    rng = np.random.default_rng(1)
    exclude = np.arange(0, 20)
    counts = np.zeros(50)
    for _ in range(4_000):
        picks = queueing.draw_audits(50, 3, exclude, rng)
        assert len(set(picks.tolist())) == 3 and not set(picks.tolist()) & set(exclude.tolist())
        counts[picks] += 1
    free = counts[20:]
    assert counts[:20].sum() == 0
    # 4,000 x 3 draws over 30 items: 400 each; 5 standard deviations is about 95.
    assert np.abs(free - 400).max() < 100

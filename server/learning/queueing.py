"""Where the queue's audit items go: a share of the labels drawn uniformly from the pool.

The accuracy estimate (assay.evaluation.accuracy) needs some labels that are a sample of the data, not
of what the strategy finds hard. Every time the labels owed to the audit reach a whole one, the next
position is an audit: at a share of 5%, labels 20, 40, 60, ... Simulations (docs/RESULTS.md) measure what
the share costs the learning curve.
"""
from __future__ import annotations

import math

import numpy as np

from .defaults import AUDIT_SHARE  # a project setting's default (assay.domain.settings offers it)
AUDIT = "audit"


def audit_flags(n_labels: int, n_audit: int, n_next: int, share: float = AUDIT_SHARE) -> np.ndarray:
    """For each of the next ``n_next`` labels, whether it is an audit, given ``n_labels`` labels so far of
    which ``n_audit`` were audits."""
    flags = np.zeros(max(0, int(n_next)), dtype=bool)
    if share <= 0:
        return flags
    placed = int(n_audit)
    for r in range(len(flags)):
        if math.floor(share * (n_labels + r + 1) + 1e-9) > placed:
            flags[r] = True
            placed += 1
    return flags


def audits_due(n_labels: int, n_audit: int, n_next: int, share: float = AUDIT_SHARE) -> int:
    """How many of the next ``n_next`` labels are audits."""
    return int(audit_flags(n_labels, n_audit, n_next, share).sum())


def draw_audits(pool_size: int, n: int, exclude, rng: np.random.Generator) -> np.ndarray:
    """``n`` pool rows drawn uniformly from those not in ``exclude``."""
    free = np.setdiff1d(np.arange(pool_size), np.asarray(exclude, dtype=np.intp))
    n = min(int(n), len(free))
    return rng.choice(free, size=n, replace=False) if n else np.zeros(0, dtype=np.intp)

"""Diverse batches from a determinantal point process (DPP).

A DPP with PSD kernel ``L`` makes a set ``Y`` likely in proportion to
``det(L_Y)``: the squared volume spanned by the items' feature vectors. With
``L = diag(q) S diag(q)`` (``S`` a similarity, ``q`` a per-item quality) a likely
set holds items that are both good and unlike each other.

Finding the most likely set of a given size is NP-hard; the greedy MAP of Chen,
Zhang & Zhou (2018, "Fast Greedy MAP Inference for Determinantal Point Process
to Improve Recommendation Diversity", Algorithm 1) adds, at each step, the item
that most increases ``log det``. It keeps an incremental Cholesky factor of the
chosen set, so that gain (``log d_i^2``, with ``d_i^2`` the squared distance of
item ``i`` from the span of the chosen items) is updated in O(N) per chosen
item, O(N B^2) in all, and needs only the kernel rows of the chosen items.

When the kernel's rank is smaller than the batch (every remaining ``d_i^2`` is
zero up to rounding), ``det`` is zero for any larger set and the greedy has no
preference. We then start a new greedy round over the items not yet chosen, as
if the chosen ones had been removed from the pool: the next picks are diverse
among themselves rather than arbitrary. Items whose kernel diagonal is zero
(zero quality) can never enter a round; they come last, in index order.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._checks import StrategyInputError, check_batch, check_matrix, check_scores

# An item whose squared distance from the chosen span is at most this fraction
# of its own squared norm (its kernel diagonal) lies in that span up to rounding.
# Float64 Cholesky rows lose ~1e-16 * (rank) relative; this leaves wide margin.
RESIDUAL_TOL = 1e-10

# A kernel is symmetric if |L - L^T| is at most this fraction of max |L|.
SYMMETRY_TOL = 1e-8


def greedy_map(kernel_N_N, batch_size) -> np.ndarray:
    """Greedy MAP of the DPP with PSD kernel ``kernel_N_N``: ``batch_size`` indices in selection order.

    Each step adds the item with the largest ``d_i^2``, the factor by which it
    multiplies ``det`` of the chosen set (ties go to the lower index). Beyond the
    kernel's rank, a new round starts over the unchosen items (see the module
    docstring); items with a zero diagonal come last, in index order.

    Only the diagonal is checked for positive semi-definiteness: a full check
    would cost O(N^3). A kernel that is not PSD gives a greedy set all the same,
    without the DPP meaning.
    """
    kernel = check_matrix("kernel_N_N", kernel_N_N)
    n, m = kernel.shape
    if n != m:
        raise StrategyInputError(f"kernel_N_N must be square, got shape {kernel.shape}")
    batch_size = check_batch(batch_size, n)
    scale = float(np.max(np.abs(kernel)))
    asym = float(np.max(np.abs(kernel - kernel.T)))
    if asym > SYMMETRY_TOL * scale:
        raise StrategyInputError(
            f"kernel_N_N must be symmetric: max |L - L^T| = {asym:.3g} (max |L| = {scale:.3g})"
        )
    diag_N = np.array(np.diagonal(kernel), dtype=np.float64)
    if diag_N.min() < -SYMMETRY_TOL * scale:
        raise StrategyInputError("kernel_N_N has a negative diagonal entry, so it is not positive semi-definite")
    np.maximum(diag_N, 0.0, out=diag_N)

    def row(j: int) -> np.ndarray:
        return np.array(kernel[j], dtype=np.float64)  # a copy: _greedy writes into it

    return _greedy(row, diag_N, batch_size)


def select(embeddings_N_D, batch_size, quality_N=None) -> np.ndarray:
    """A diverse, high-quality batch: greedy MAP of ``L = diag(q) S diag(q)``, ``batch_size`` indices in order.

    ``S`` is the cosine similarity of the embedding rows. ``L`` is never built:
    the greedy asks for the row of each chosen item only, ``q_j * q * (E @ E[j])``
    with ``E`` the row-normalised embeddings, so memory stays O(N (D + B)).

    A row of zeros has no direction. We give it similarity 0 with every other
    item and 1 with itself (``S_ii = 1`` for every item): such an item is unlike
    all the others, which is the safe reading for a featureless item. Since
    ``S`` has rank at most D (plus the zero rows), a batch larger than that is
    filled by further greedy rounds (see the module docstring).

    ``quality_N`` defaults to all ones (pure diversity); it must be finite and
    non-negative. An item of zero quality is chosen only when nothing else is left.
    """
    emb = check_matrix("embeddings_N_D", embeddings_N_D)
    n = emb.shape[0]
    batch_size = check_batch(batch_size, n)
    if quality_N is None:
        quality = np.ones(n)
    else:
        quality = np.asarray(check_scores("quality_N", quality_N), dtype=np.float64)
        if quality.shape[0] != n:
            raise StrategyInputError(
                f"quality_N has {quality.shape[0]} entries but embeddings_N_D has {n} rows"
            )
        if quality.size and quality.min() < 0:
            raise StrategyInputError("quality_N must be non-negative")

    # Float64 rows: in float32, a duplicate's residual 1 - cos^2 is ~1e-7 instead
    # of ~1e-16, too close to a genuinely new direction to tell apart.
    unit_N_D = np.array(emb, dtype=np.float64)
    norms_N = np.linalg.norm(unit_N_D, axis=1)
    nonzero = norms_N > 0
    unit_N_D[nonzero] /= norms_N[nonzero, None]

    def row(j: int) -> np.ndarray:
        sim_N = unit_N_D @ unit_N_D[j]
        sim_N[j] = 1.0
        sim_N *= quality
        sim_N *= quality[j]
        return sim_N

    return _greedy(row, quality * quality, batch_size)


def _greedy(row: Callable[[int], np.ndarray], diag_N: np.ndarray, batch_size: int) -> np.ndarray:
    """Chen et al.'s incremental-Cholesky greedy, restarted when the chosen span holds everything left.

    ``row(j)`` returns row ``j`` of the kernel as float64 (a fresh array we may
    overwrite); ``diag_N`` is the kernel diagonal, non-negative.
    """
    n = diag_N.shape[0]
    chosen = np.empty(batch_size, dtype=np.intp)
    taken_N = np.zeros(n, dtype=bool)
    # Row k holds the k-th column of the Cholesky factor restricted to all items:
    # c_i[k] in the paper's notation, stored item-major for contiguous updates.
    factor_B_N = np.empty((batch_size, n), dtype=np.float64)
    floor_N = RESIDUAL_TOL * diag_N
    count = 0
    while count < batch_size:
        dist2_N = diag_N.copy()
        dist2_N[taken_N | (diag_N <= 0)] = -np.inf
        k = 0  # size of the current round
        while count < batch_size:
            j = int(np.argmax(dist2_N))
            if dist2_N[j] == -np.inf:
                break
            row_N = row(j)
            if k:
                row_N -= factor_B_N[:k, j] @ factor_B_N[:k]
            row_N /= np.sqrt(dist2_N[j])
            factor_B_N[k] = row_N
            row_N *= row_N
            dist2_N -= row_N
            taken_N[j] = True
            chosen[count] = j
            count += 1
            k += 1
            # Chosen items, and items now inside the chosen span, leave this round.
            dist2_N[j] = -np.inf
            dist2_N[dist2_N <= floor_N] = -np.inf
        if k == 0:
            break
    if count < batch_size:
        # Only zero-diagonal items remain: nothing distinguishes them but the index.
        rest = np.flatnonzero(~taken_N)
        order = np.lexsort((rest, -diag_N[rest]))
        chosen[count:] = rest[order][: batch_size - count]
    return chosen

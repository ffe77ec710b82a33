"""BALD and greedy BatchBALD from posterior samples ``probs_N_K_C``.

``probs_N_K_C[n, k]`` is the class distribution the k-th posterior sample
(the same K functions for every item) predicts for item n. BALD is the mutual
information between an item's label and the model parameters; BatchBALD
(Kirsch, van Amersfoort and Gal, 2019) scores a whole batch by the mutual
information between the batch's joint labels and the parameters, and builds
the batch greedily. All entropies are in nats.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._checks import (NEGATIVE_MESSAGE, StrategyInputError, as_rng, check_batch, check_probs, check_probs_shape,
                      check_probs_values)

# Elements per temporary block: small enough to stay in cache-friendly sizes,
# large enough that the per-block Python overhead is noise.
_BLOCK_ELEMENTS = 1 << 18


def _sum_xlogx(x: np.ndarray, axes: str) -> np.ndarray:
    """``sum x ln x`` over the trailing axes named by the einsum spec ``axes`` (0 ln 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(x)
        total = np.einsum(f"{axes},{axes}->{axes[0]}", x, logs)
    # A zero entry makes its row nan (0 * -inf); redo only those rows the careful way.
    # So does a negative one (its log is nan): this is where BALD's input check finds them.
    bad = np.isnan(total)
    if bad.any():
        rows = x[bad]
        if (rows < 0).any():
            raise StrategyInputError(NEGATIVE_MESSAGE.format(name="probs_N_K_C"))
        total[bad] = np.einsum(f"{axes},{axes}->{axes[0]}", rows, np.log(np.where(rows > 0, rows, 1.0)))
    return total


def _entropy_terms(probs_N_K_C: np.ndarray, validate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``H[mean_k p]`` and ``mean_k H[p_k]`` per item, as float64.

    Works block by block in the input dtype so the temporaries stay small and
    a float32 input is not doubled in memory. With ``validate``, each block's
    values are checked while it is in cache (no separate passes over the array).
    """
    n_items, n_samples, n_classes = probs_N_K_C.shape
    total_N = np.empty(n_items)
    expected_N = np.empty(n_items)
    if n_items == 0:
        return total_N, expected_N
    step = max(1, _BLOCK_ELEMENTS // max(1, n_samples * n_classes))
    ones_K = np.full(n_samples, 1.0 / n_samples, dtype=probs_N_K_C.dtype)
    for start in range(0, n_items, step):
        block_b_K_C = probs_N_K_C[start:start + step]
        if validate:
            # Negative entries are caught by _sum_xlogx below, without a min pass here.
            check_probs_values("probs_N_K_C", block_b_K_C, negatives=False)
        # matmul with a weight vector averages over K far faster than .mean(axis=1).
        mean_b_C = ones_K @ block_b_K_C
        total_N[start:start + step] = -_sum_xlogx(mean_b_C, "nc")
        expected_N[start:start + step] = -_sum_xlogx(block_b_K_C, "nkc") / n_samples
    return total_N, expected_N


def bald(probs_N_K_C) -> np.ndarray:
    """``H[mean_k p] - mean_k H[p_k]`` per item, clamped at 0 (rounding can dip below)."""
    probs_N_K_C = check_probs_shape("probs_N_K_C", probs_N_K_C, 3)
    total_N, expected_N = _entropy_terms(probs_N_K_C, validate=True)
    return np.maximum(total_N - expected_N, 0.0)


def conditional_entropy(probs_N_K_C) -> np.ndarray:
    """``mean_k H[p_k]``: the label entropy left once the parameters are known."""
    probs_N_K_C = check_probs("probs_N_K_C", probs_N_K_C, 3)
    return np.maximum(_entropy_terms(probs_N_K_C)[1], 0.0)


# -- BatchBALD -------------------------------------------------------------
#
# The chosen items' joint labels y_A are tracked as a set of configurations m,
# each with a weight omega_m and the posterior over samples given it,
# W[m, k] = p(k | y_A = m). For a candidate n, p(y_n = c | y_A = m) =
# sum_k W[m, k] p_k(c), so
#     H(y_A, y_n) = H(y_A) + sum_m omega_m H[W[m] @ p_n].
# Exactly: the configurations are all label combinations with nonzero
# probability, omega_m = p(y_A = m). Sampled: M configurations drawn from the
# joint (draw k, then each label from p_k), omega_m = 1/M; this is the
# importance-weighted estimator of the paper with the weights folded into W.
# Keeping W normalised, rather than products of probabilities, is what keeps
# large batches from underflowing.


class _ExactJoint:
    def __init__(self, n_samples: int):
        self.W_M_K = np.full((1, n_samples), 1.0 / n_samples)
        self.omega_M = np.ones(1)

    def size_after_adding(self, n_classes: int) -> int:
        return len(self.omega_M) * n_classes

    def add(self, probs_K_C: np.ndarray) -> None:
        # p(y_A = m, y_i = c, k) = omega_m W[m, k] p_k(c)
        joint_M_C_K = self.W_M_K[:, None, :] * probs_K_C.T[None, :, :]
        marginal_M_C = joint_M_C_K.sum(axis=2)
        keep = (marginal_M_C > 0).ravel()
        joint_X_K = joint_M_C_K.reshape(-1, joint_M_C_K.shape[2])[keep]
        marginal_X = marginal_M_C.ravel()[keep]
        self.W_M_K = joint_X_K / marginal_X[:, None]
        self.omega_M = (self.omega_M[:, None] * marginal_M_C).ravel()[keep]

    def entropy(self) -> float:
        omega = self.omega_M[self.omega_M > 0]
        return float(-(omega * np.log(omega)).sum())


class _SampledJoint:
    def __init__(self, num_samples: int, n_samples: int, rng: np.random.Generator):
        # Stratify over the posterior samples: each k draws the same number of configurations.
        per_k = max(1, num_samples // n_samples)
        self.k_M = np.repeat(np.arange(n_samples), per_k)
        self.log_lik_M_K = np.zeros((len(self.k_M), n_samples))
        self.rng = rng
        self._refresh()

    def add(self, probs_K_C: np.ndarray) -> None:
        """Extend every configuration with a label drawn from its own posterior sample."""
        probs_M_C = probs_K_C[self.k_M]
        cdf_M_C = np.cumsum(probs_M_C, axis=1)
        # Scaling u by the row total (not 1) and counting cdf <= u means a
        # zero-probability class is never drawn, whatever the rounding.
        u_M = self.rng.random(len(self.k_M)) * cdf_M_C[:, -1]
        labels_M = (cdf_M_C <= u_M[:, None]).sum(axis=1)
        with np.errstate(divide="ignore"):
            self.log_lik_M_K += np.log(probs_K_C[:, labels_M].T)
        self._refresh()

    def _refresh(self) -> None:
        peak_M = self.log_lik_M_K.max(axis=1, keepdims=True)
        lik_M_K = np.exp(self.log_lik_M_K - peak_M)
        norm_M = lik_M_K.sum(axis=1)
        self.W_M_K = lik_M_K / norm_M[:, None]
        self.omega_M = np.full(len(self.k_M), 1.0 / len(self.k_M))
        n_samples = self.log_lik_M_K.shape[1]
        self._log_q_M = peak_M[:, 0] + np.log(norm_M) - np.log(n_samples)

    def entropy(self) -> float:
        return float(-self._log_q_M.mean())


def _conditional_joint_entropy(joint, probs_N_K_C: np.ndarray, candidates_B: np.ndarray) -> np.ndarray:
    """``H(y_b | y_A) = sum_m omega_m H[W[m] @ p_b]`` for every candidate b."""
    _, n_samples, n_classes = probs_N_K_C.shape
    n_configs = len(joint.omega_M)
    out_B = np.empty(len(candidates_B))
    step = max(1, _BLOCK_ELEMENTS // (n_configs * n_classes))
    for start in range(0, len(candidates_B), step):
        # Gather one block at a time: indexing the whole remaining pool would copy it every step.
        block_b_K_C = probs_N_K_C[candidates_B[start:start + step]]
        b = len(block_b_K_C)
        # One GEMM for the whole block: (M, K) @ (K, b*C).
        stacked_K_bC = np.ascontiguousarray(block_b_K_C.transpose(1, 0, 2), dtype=np.float64).reshape(
            n_samples, b * n_classes)
        cond_M_b_C = (joint.W_M_K @ stacked_K_bC).reshape(n_configs, b, n_classes)
        ent_M_b = -_sum_xlogx(cond_M_b_C.reshape(n_configs * b, n_classes), "nc").reshape(n_configs, b)
        out_B[start:start + b] = joint.omega_M @ ent_M_b
    return out_B


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < 1:
        raise StrategyInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def greedy_batchbald(probs_N_K_C, batch_size, num_samples=10_000, random_state=None,
                     max_joint_entries=None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy BatchBALD indices and, for each prefix of the batch, its estimated mutual information.

    ``mi_B[t]`` estimates ``I(y_{i_0}, ..., y_{i_t}; theta)``. The joint label
    distribution of the items already chosen is enumerated exactly while its
    table (configurations x K) has at most ``max_joint_entries`` entries
    (default ``num_samples * K``); beyond that ``num_samples`` configurations
    are sampled from it, drawn with ``random_state``.
    """
    probs_N_K_C = check_probs("probs_N_K_C", probs_N_K_C, 3)
    n_items, n_samples, n_classes = probs_N_K_C.shape
    batch_size = check_batch(batch_size, n_items)
    num_samples = _positive_int("num_samples", num_samples)
    if max_joint_entries is None:
        max_joint_entries = num_samples * n_samples
    max_joint_entries = _positive_int("max_joint_entries", max_joint_entries)
    rng = as_rng(random_state)

    _, expected_N = _entropy_terms(probs_N_K_C)
    joint = _ExactJoint(n_samples)
    chosen: list[int] = []
    mi_B = np.empty(batch_size)
    remaining = np.ones(n_items, dtype=bool)
    chosen_expected = 0.0
    for step in range(batch_size):
        candidates = np.flatnonzero(remaining)
        # H(y_A, y_n) - sum of conditional entropies; H(y_A) and A's own terms are the same for every n.
        gain = _conditional_joint_entropy(joint, probs_N_K_C, candidates) - expected_N[candidates]
        best = int(np.argmax(gain))
        pick = int(candidates[best])
        chosen_expected += expected_N[pick]
        mi_B[step] = joint.entropy() + gain[best] + expected_N[pick] - chosen_expected
        chosen.append(pick)
        remaining[pick] = False
        if step == batch_size - 1:
            break
        probs_K_C = np.asarray(probs_N_K_C[pick], dtype=np.float64)
        if isinstance(joint, _ExactJoint) and joint.size_after_adding(n_classes) * n_samples > max_joint_entries:
            joint = _SampledJoint(num_samples, n_samples, rng)
            for index in chosen:
                joint.add(np.asarray(probs_N_K_C[index], dtype=np.float64))
        else:
            joint.add(probs_K_C)
    return np.asarray(chosen, dtype=np.intp), np.maximum(mi_B, 0.0)


def batchbald(probs_N_K_C, batch_size, num_samples=10_000, random_state=None, *,
              max_joint_entries=None) -> np.ndarray:
    """Greedy BatchBALD (Kirsch et al. 2019): ``batch_size`` indices in selection order.

    Each step adds the item that most increases the mutual information between
    the batch's joint labels and the model parameters. The joint entropy is
    exact while the table of label configurations x K fits in
    ``max_joint_entries`` (default ``num_samples * K``), and estimated from
    ``num_samples`` sampled configurations beyond. The result is deterministic
    for a fixed ``random_state``; the first pick is always the top BALD item.
    """
    indices, _ = greedy_batchbald(probs_N_K_C, batch_size, num_samples=num_samples,
                                  random_state=random_state, max_joint_entries=max_joint_entries)
    return indices

"""Influence-based selection (ISAL: Liu et al. 2021, "Influence Selection for Active Learning").

Score each unlabeled point by how much adding it to the training set, with the
model's own argmax label, would lower the summed cross-entropy on a labeled
validation set, to first order (Koh & Liang 2017). Upweighting a point ``x`` by
``eps`` in a training objective with Hessian ``H`` at its optimum moves the
parameters by ``-eps H^-1 grad l(x)``, so the validation loss changes by
``-eps g_val^T H^-1 grad l(x)``. The score is the decrease:

    score(x) = g_val^T H^-1 grad l(x, y_hat(x))

Higher means more useful. Scores can be negative: such a point, labeled as the
model would label it, is expected to make the validation loss worse. (This is
the one strategy score that is not >= 0.)

Why the argmax label: the expected gradient under the model's own predictive
distribution, ``sum_c p_c (p - e_c) x^T``, is exactly zero for a softmax head,
so "expected influence" would score every point 0.

``influence_scores`` is exact for a linear softmax head: the Hessian is formed
and factored when it is small, else ``H^-1 g_val`` comes from conjugate
gradients on Hessian-vector products. A network's last layer is such a head
(a model's ``linear_head``: logreg and mlp give one).
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from ._checks import StrategyInputError, check_matrix
from .numerics import softmax_inplace

# Above this many parameters (C * D) the (C D)^2 Hessian is no longer formed.
CHOLESKY_MAX_PARAMS = 4000

# Relative residual at which conjugate gradients stop. Tighter is wasted: with
# l2 small against the data curvature, rounding keeps the residual above ~1e-10.
CG_RTOL = 1e-8

# Default cap on CG iterations; the preconditioned solve typically needs 20-400.
CG_MAXITER = 2000


def influence_scores(W_C_D, X_train_N_D, y_train_N, X_val_M_D, y_val_M, X_pool_P_D, l2,
                     *, method: str = "auto", cg_maxiter: int | None = None) -> np.ndarray:
    """First-order decrease of the summed validation cross-entropy from adding each pool point.

    The model is ``p = softmax(W x)`` fitted on ``sum_i CE(x_i, y_i) + (l2/2) ||W||^2``
    over the training rows, with no separate bias (append a constant feature to
    every X for one). ``W_C_D`` should be that objective's minimiser: the
    influence approximation assumes a zero training gradient.

    ``l2`` must be positive: softmax is unchanged when the same vector is added to
    every row of W, so without the penalty the Hessian is singular.

    ``method``: "cholesky" forms and factors the exact (C D) x (C D) Hessian;
    "cg" solves with conjugate gradients using Hessian-vector products, never
    forming it (O(N C D) work per iteration, preconditioned by the per-class
    D x D diagonal blocks; at most ``cg_maxiter`` iterations, default
    CG_MAXITER, with a RuntimeWarning if that was not enough); "auto" takes
    Cholesky when C * D <= CHOLESKY_MAX_PARAMS.

    Returns ``scores_P`` (float64): higher means more useful, negative means harmful.
    """
    W, X_train, y_train, X_val, y_val, X_pool, l2 = _check_linear(
        W_C_D, X_train_N_D, y_train_N, X_val_M_D, y_val_M, X_pool_P_D, l2)
    num_classes, dim = W.shape
    if method not in ("auto", "cholesky", "cg"):
        raise StrategyInputError(f"method must be 'auto', 'cholesky' or 'cg', got {method!r}")
    if method == "auto":
        method = "cholesky" if num_classes * dim <= CHOLESKY_MAX_PARAMS else "cg"

    probs_val_M_C = softmax_inplace(X_val @ W.T)
    residual_val_M_C = probs_val_M_C
    residual_val_M_C[np.arange(len(y_val)), y_val] -= 1.0
    grad_val_C_D = residual_val_M_C.T @ X_val

    probs_train_N_C = softmax_inplace(X_train @ W.T)
    if method == "cholesky":
        hessian = _hessian(probs_train_N_C, X_train, l2)
        factor = scipy.linalg.cho_factor(hessian, lower=True, overwrite_a=True, check_finite=False)
        solved_C_D = scipy.linalg.cho_solve(factor, grad_val_C_D.ravel(), check_finite=False)
        solved_C_D = solved_C_D.reshape(num_classes, dim)
    else:
        solved_C_D = _solve_cg(probs_train_N_C, X_train, l2, grad_val_C_D, cg_maxiter)

    return _score_pool(W, solved_C_D, X_pool)


def _score_pool(W_C_D: np.ndarray, solved_C_D: np.ndarray, X_pool_P_D: np.ndarray,
                chunk: int = 65_536) -> np.ndarray:
    """``sum_c (p_c - [c = argmax p]) (S x)_c`` for each pool row, in chunks to bound memory."""
    num_classes = W_C_D.shape[0]
    both_D_2C = np.concatenate([W_C_D, solved_C_D]).T
    scores_P = np.empty(X_pool_P_D.shape[0])
    for start in range(0, X_pool_P_D.shape[0], chunk):
        block = X_pool_P_D[start:start + chunk] @ both_D_2C
        probs = softmax_inplace(block[:, :num_classes])
        s_x = block[:, num_classes:]
        pseudo = np.argmax(probs, axis=1)
        scores_P[start:start + chunk] = (
            np.einsum("pc,pc->p", probs, s_x) - s_x[np.arange(len(pseudo)), pseudo]
        )
    return scores_P


def _hessian(probs_N_C: np.ndarray, X_N_D: np.ndarray, l2: float) -> np.ndarray:
    """``sum_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T + l2 I``, row-major over (class, feature).

    Only the LOWER triangle is filled (what ``cho_factor(lower=True)`` reads).
    """
    n, num_classes = probs_N_C.shape
    dim = X_N_D.shape[1]
    # The outer-product part in one symmetric rank-n update: column (c, d) of Z is p_ic x_id.
    # BLAS syrk computes one triangle only, half the work of Z^T Z (the bulk of the cost).
    z_N_CD = (probs_N_C[:, :, None] * X_N_D[:, None, :]).reshape(n, num_classes * dim)
    hessian = scipy.linalg.blas.dsyrk(-1.0, z_N_CD.T, lower=1)  # -Z^T Z, as A A^T with A = Z^T (Fortran view)
    del z_N_CD
    for c in range(num_classes):
        block = slice(c * dim, (c + 1) * dim)
        hessian[block, block] += (X_N_D * probs_N_C[:, c:c + 1]).T @ X_N_D
    hessian.flat[:: num_classes * dim + 1] += l2
    return hessian


def _hvp(probs_N_C: np.ndarray, X_N_D: np.ndarray, l2: float, V_C_D: np.ndarray) -> np.ndarray:
    """``H vec(V)`` without forming H: per item, ``(diag(p) - p p^T) (V x) x^T``."""
    u_N_C = X_N_D @ V_C_D.T
    u_N_C *= probs_N_C
    u_N_C -= probs_N_C * u_N_C.sum(axis=1, keepdims=True)
    return u_N_C.T @ X_N_D + l2 * V_C_D


def _solve_cg(probs_N_C, X_N_D, l2, rhs_C_D, maxiter):
    num_classes, dim = rhs_C_D.shape
    size = num_classes * dim
    # Adding one vector to every row of W changes nothing, so each per-item
    # gradient's rows sum to zero and H maps that subspace to itself: the
    # solution lies in it. Rounding aside, rhs does too; make it exact.
    rhs_C_D = rhs_C_D - rhs_C_D.mean(axis=0)
    if not np.any(rhs_C_D):
        return np.zeros_like(rhs_C_D)
    # Preconditioner: the per-class diagonal blocks X^T diag(p_c (1 - p_c)) X + l2 I
    # of H, solved exactly, with the result projected back onto the rows-sum-to-zero
    # subspace (where it is positive definite). This captures correlated features;
    # on digits-like data it cuts iterations 3-8x against no or diagonal preconditioning.
    blocks = []
    for c in range(num_classes):
        curv_N = probs_N_C[:, c] * (1.0 - probs_N_C[:, c])
        block_D_D = (X_N_D * curv_N[:, None]).T @ X_N_D
        block_D_D.flat[:: dim + 1] += l2
        blocks.append(scipy.linalg.cho_factor(block_D_D, lower=True, overwrite_a=True, check_finite=False))

    def precondition(v):
        V_C_D = v.reshape(num_classes, dim)
        V_C_D = V_C_D - V_C_D.mean(axis=0)
        out_C_D = np.stack([scipy.linalg.cho_solve(blocks[c], V_C_D[c], check_finite=False)
                            for c in range(num_classes)])
        return (out_C_D - out_C_D.mean(axis=0)).ravel()

    op = scipy.sparse.linalg.LinearOperator(
        (size, size), dtype=np.float64,
        matvec=lambda v: _hvp(probs_N_C, X_N_D, l2, v.reshape(num_classes, dim)).ravel())
    precond = scipy.sparse.linalg.LinearOperator((size, size), dtype=np.float64, matvec=precondition)
    solution, info = scipy.sparse.linalg.cg(op, rhs_C_D.ravel(), rtol=CG_RTOL, atol=0.0, M=precond,
                                            maxiter=CG_MAXITER if maxiter is None else maxiter)
    if info > 0:
        warnings.warn(f"conjugate gradients stopped after {info} iterations without reaching "
                      f"relative residual {CG_RTOL:g}; influence scores are approximate",
                      RuntimeWarning, stacklevel=3)
    return solution.reshape(num_classes, dim)


def _check_labels(name: str, labels, size: int, num_classes: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != size:
        raise StrategyInputError(f"{name} must have shape ({size},), got {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.intp)
    if np.issubdtype(arr.dtype, np.integer):
        ints = arr.astype(np.intp)
    elif np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        ints = arr.astype(np.intp)
    else:
        raise StrategyInputError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    if ints.min() < 0 or ints.max() >= num_classes:
        raise StrategyInputError(
            f"{name} must hold class indices in [0, {num_classes}), got range [{ints.min()}, {ints.max()}]")
    return ints


def _check_l2(l2) -> float:
    if isinstance(l2, bool) or not isinstance(l2, (numbers.Real, np.floating, np.integer)):
        raise StrategyInputError(f"l2 must be a positive number, got {l2!r}")
    l2 = float(l2)
    if not math.isfinite(l2) or l2 <= 0:
        raise StrategyInputError(
            f"l2 must be positive and finite, got {l2} (without it the softmax Hessian is singular)")
    return l2


def _check_linear(W_C_D, X_train_N_D, y_train_N, X_val_M_D, y_val_M, X_pool_P_D, l2):
    W = np.asarray(check_matrix("W_C_D", W_C_D), dtype=np.float64)
    num_classes, dim = W.shape
    if num_classes < 1 or dim < 1:
        raise StrategyInputError(f"W_C_D must have at least one class and one feature, got shape {W.shape}")
    arrays = []
    for name, X in (("X_train_N_D", X_train_N_D), ("X_val_M_D", X_val_M_D), ("X_pool_P_D", X_pool_P_D)):
        X = np.asarray(check_matrix(name, X), dtype=np.float64)
        if X.shape[1] != dim:
            raise StrategyInputError(f"{name} has {X.shape[1]} features but W_C_D has {dim}")
        arrays.append(X)
    X_train, X_val, X_pool = arrays
    y_train = _check_labels("y_train_N", y_train_N, X_train.shape[0], num_classes)
    y_val = _check_labels("y_val_M", y_val_M, X_val.shape[0], num_classes)
    if X_val.shape[0] == 0:
        raise StrategyInputError("influence needs at least one labeled validation row")
    return W, X_train, y_train, X_val, y_val, X_pool, _check_l2(l2)

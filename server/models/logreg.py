"""Multinomial logistic regression with a Laplace posterior: Assay's default model.

Fitted on exactly the objective that exact influence (``strategies.influence``)
assumes, ``sum_i CE(softmax(W phi_i), y_i) + (l2/2) * ||W||^2``, with ``phi_i``
the features plus a constant ``s`` (``intercept_scaling_``: the bias weight is
penalized like every other, so the bias ``s w`` has prior precision ``l2/s^2``).

The prior precision is learned from the labeled rows at every fit (``l2="auto"``):
the ``l2`` with the lowest cross-validated held-out log-loss, on folds that keep
one row of every class in training (:func:`cross_validated_l2`), smoothed over
retrains when the previous fit's prior is given (``l2_previous``). With too few
rows to hold out, MacKay's evidence fixed point ``l2 <- gamma /
||W||^2`` on the Kronecker curvature instead. A fixed prior collapses on many
classes: on clinc150 (150 intents, unit-norm TF-IDF+SVD rows) ``l2=1`` gave 0.40
test accuracy with one label per class and 0.20 with 20 more random labels, the
bias of the classes holding two labels deciding most predictions. The evidence
was no cure: it chose ``l2`` near 1 on such data, where held-out loss and test
accuracy both peak at 0.03-0.1.

Two classes get two rows of ``W`` too, not scikit-learn's single vector, so the head and its Hessian have one shape whatever the class count.

The posterior is the Laplace approximation ``N(W*, H^-1)`` around the optimum,
where ``H`` is the Hessian of that objective, with its prior term ``l2 I`` taken at
``posterior_l2_``: by default the evidence's precision, not cross-validation's (see
``posterior_l2``). ``H`` is approximated as

* ``"full"``: the exact ``(C*D) x (C*D)`` Hessian, Cholesky-factored once and
  cached. Forming it costs ``O(N (C*D)^2)`` and factoring ``O((C*D)^3)`` with
  ``(C*D)^2`` floats of memory, about a second and 128 MB at ``C*D = 4000``;
  past that it grows cubically, so ``"auto"`` uses it only up to
  ``max_exact_hessian``.
* ``"kron"``: a Kronecker factorization of the cross-entropy part,
  ``sum_i A_i (x) phi_i phi_i^T ~= mean_i(A_i) (x) sum_i phi_i phi_i^T`` with
  ``A_i = diag(p_i) - p_i p_i^T`` (the K-FAC form). It keeps the correlations
  between features and between classes and costs one ``D x D`` and one
  ``C x C`` eigendecomposition; the prior term ``l2 * I`` is added exactly in
  the joint eigenbasis. ``"auto"`` picks it when ``C*D`` is too big for the
  exact Hessian but ``D <= max_exact_hessian``.
* ``"diag"``: only the Hessian's diagonal. The cheapest, for very wide
  features; it ignores every correlation and so understates each weight's
  marginal variance (``1/H_jj <= (H^-1)_jj``), which makes samples less diverse.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg, optimize
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin
from threadpoolctl import threadpool_limits
from sklearn.exceptions import ConvergenceWarning
from ._targets import check_class_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from assay.strategies import as_rng, softmax_inplace

from .params import SEED, Param

LAPLACE_MODES = ("auto", "full", "kron", "diag")
POSTERIOR_L2_MODES = ("auto", "evidence", "same")

# Rows per chunk when predicting: bounds the (rows, K*C) logit block in memory.
_CHUNK_ROWS = 8192


def one_blas_thread():
    """Context: BLAS on one thread. On a shared 2-core machine OpenBLAS's spinning
    threads made fits 30-70x slower and the Hessian and predictions 2-8x slower;
    one thread is never much worse for these sizes, and leaves a core to the web server."""
    return threadpool_limits(limits=1, user_api="blas")


def objective(w_flat: np.ndarray, Phi_N_D: np.ndarray, y_N: np.ndarray, num_classes: int, l2: float,
              center: np.ndarray | None = None):
    """``sum CE + (l2/2) ||W - center||^2`` and its gradient, for ``W`` flattened row-major (C, D).

    ``center`` (flattened like ``W``; None: 0) is the prior's mean: the label names' zero-shot weights
    (:meth:`LogisticRegression.set_label_prior`)."""
    W_C_D = w_flat.reshape(num_classes, Phi_N_D.shape[1])
    logits_N_C = Phi_N_D @ W_C_D.T
    rows = np.arange(len(y_N))
    # One exp serves both the log-sum-exp and the softmax (scipy's logsumexp and a second exp took
    # half of a 150-class fit).
    max_N = logits_N_C.max(axis=1)
    picked = logits_N_C[rows, y_N].sum()
    logits_N_C -= max_N[:, None]
    residual_N_C = np.exp(logits_N_C, out=logits_N_C)
    sum_N = residual_N_C.sum(axis=1)
    shift = w_flat if center is None else w_flat - center
    loss = (np.log(sum_N) + max_N).sum() - picked + 0.5 * l2 * np.dot(shift, shift)
    residual_N_C /= sum_N[:, None]
    residual_N_C[rows, y_N] -= 1.0
    grad_C_D = residual_N_C.T @ Phi_N_D + l2 * shift.reshape(num_classes, -1)
    return loss, grad_C_D.ravel()


def exact_hessian_upper(W_C_D: np.ndarray, Phi_N_D: np.ndarray, l2: float) -> np.ndarray:
    """The objective's Hessian over row-major vec(W); only the upper triangle is valid.

    ``H = sum_i (diag(p_i) - p_i p_i^T) (x) phi_i phi_i^T + l2 I``. The rank-N
    part is a symmetric rank-k update (half the flops of a full product), which
    is why the lower triangle is left unfilled.
    """
    num_classes, dim = W_C_D.shape
    size = num_classes * dim
    H = np.zeros((size, size), order="F")
    for start in range(0, len(Phi_N_D), _CHUNK_ROWS):
        Phi = Phi_N_D[start:start + _CHUNK_ROWS]
        P_n_C = softmax_inplace(Phi @ W_C_D.T)
        for c in range(num_classes):
            block = slice(c * dim, (c + 1) * dim)
            H[block, block] += (Phi * P_n_C[:, c:c + 1]).T @ Phi
        G_n_CD = (P_n_C[:, :, None] * Phi[:, None, :]).reshape(len(Phi), size)
        H = linalg.blas.dsyrk(-1.0, G_n_CD, beta=1.0, c=H, trans=1, lower=0, overwrite_c=1)
    H[np.diag_indices(size)] += l2
    return H


# Evidence maximization: the fallback of l2="auto" when too few labels can be held out for
# cross-validation. At most this many fit <-> update rounds, stopping once the precision moves by
# less than _EVIDENCE_LOG_TOL in log; kept within bounds.
_EVIDENCE_MAX_ROUNDS = 8
_EVIDENCE_LOG_TOL = 0.05
_EVIDENCE_BOUNDS = (1e-4, 1e4)
_EVIDENCE_START = 1.0
_EVIDENCE_FIT_TOL = 1e-2

# Cross-validated prior (l2="auto"): held-out log-loss over decades of l2, searched from a tenth of
# the mean squared row norm (or from the previous fit's prior), on two folds. The fold fits only steer
# the choice, so they stop early.
_CV_FOLDS = 2
# With the previous fit's prior given, log l2 moves this share of the way to the new minimum...
L2_SMOOTHING = 0.1
# ...unless the previous prior's held-out log-loss is more than this share above the minimum's: then the
# minimum is taken (the labels or the features changed too much for the old prior to be a guide).
L2_RESET_TOLERANCE = 0.03
_CV_MIN_HELD_OUT = 6
_CV_LOG10_BOUNDS = (-4.0, 4.0)
_CV_FIT_TOL = 1e-2
_CV_MAX_ITER = 100
# Above this many rows the folds use a random subset (every class kept) and the chosen l2 is scaled by
# rows / subset rows: the objective sums over rows, so the same per-row strength needs l2 in proportion.
# Fifteen thousand rows of 150 classes took minutes to cross-validate; the prior matters least there.
_CV_MAX_ROWS = 3000


def holdout_folds(y_N: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each row, or -1 for rows every fold trains on: one random row per class.

    Every class keeps a training row in every fold, so held-out rows are always of a class the
    fold's model knows, and with one or two labels per class the folds still see what a fixed
    prior does to the classes with fewer labels (the collapse the prior is chosen against).
    """
    fold_N = np.full(len(y_N), -1)
    counter = int(rng.integers(n_folds))
    # Classes in the order they first appear, not by index: renaming the labels must not change the folds.
    for c in y_N[np.sort(np.unique(y_N, return_index=True)[1])]:
        rows = rng.permutation(np.flatnonzero(y_N == c))
        for row in rows[1:]:
            fold_N[row] = counter % n_folds
            counter += 1
    return fold_N


def cross_validated_l2(Phi_N_D: np.ndarray, y_N: np.ndarray, num_classes: int, fold_N: np.ndarray,
                       max_iter: int = _CV_MAX_ITER, previous: float | None = None,
                       smoothing: float = L2_SMOOTHING, tolerance: float = L2_RESET_TOLERANCE,
                       center: np.ndarray | None = None):
    """The prior precision with the lowest held-out log-loss, and the path of scores.

    ``fold_N`` is each row's fold (-1: in every training set).
    Returns ``(l2, w0, path)``: ``w0`` (the fold solutions at the best decade, averaged) warm-starts
    the final fit, and ``path`` lists ``(l2, mean held-out log-loss)`` as evaluated. The
    search walks decades downhill from a tenth of the mean squared row norm (the held-out loss
    is unimodal in log l2 in practice) and places the minimum by a parabola through the best
    decade and its neighbours (within half a decade of the best): three to six grid points, each
    one warm-started, early-stopped fit per fold.

    ``previous`` (the prior the last retrain chose) starts the walk, and the result is smoothed
    towards it: ``log l2 = (1 - smoothing) log previous + smoothing log minimum``, unless the loss at
    ``previous`` (read off the parabola) is more than ``tolerance`` (a share) above the minimum's.
    Active learning picks its labels near the boundary, where the loss is flat over a decade or more
    of ``l2``, so each retrain's new random folds moved the minimum by up to a decade; the accuracy did
    not move, but the model's confidence on everything else did, and with it the accuracy estimate.
    """
    dim = Phi_N_D.shape[1]
    folds = [f for f in range(int(fold_N.max()) + 1) if np.any(fold_N == f)]
    solutions: dict[tuple[int, float], np.ndarray] = {}
    scores: dict[float, float] = {}

    def score(log_l2: float, on_grid: bool = True) -> float:
        log_l2 = float(np.clip(round(log_l2 * 2) / 2 if on_grid else log_l2, *_CV_LOG10_BOUNDS))
        if log_l2 in scores:
            return scores[log_l2]
        loss, count = 0.0, 0
        for f in folds:
            test = fold_N == f
            nearest = min((k for k in solutions if k[0] == f), key=lambda k: abs(k[1] - log_l2), default=None)
            start = np.zeros(num_classes * dim) if center is None else center
            w0 = solutions[nearest] if nearest is not None else start
            result = optimize.minimize(
                objective, w0, args=(Phi_N_D[~test], y_N[~test], num_classes, 10.0 ** log_l2, center), jac=True,
                method="L-BFGS-B", options={"maxiter": int(max_iter), "gtol": _CV_FIT_TOL, "ftol": 1e-12})
            solutions[(f, log_l2)] = result.x
            logits_n_C = Phi_N_D[test] @ result.x.reshape(num_classes, dim).T
            loss += float(np.sum(logsumexp(logits_n_C, axis=1) - logits_n_C[np.arange(int(test.sum())), y_N[test]]))
            count += int(test.sum())
        scores[log_l2] = loss / count
        return scores[log_l2]

    low, high = _CV_LOG10_BOUNDS
    smoothed = previous is not None and previous > 0 and low <= np.log10(previous) <= high
    if smoothed:
        x = round(float(np.log10(previous)))  # the minimum is usually in the previous choice's decade
    else:
        mean_sq_norm = float(np.mean(np.einsum("nd,nd->n", Phi_N_D, Phi_N_D)))
        x = round(np.log10(0.1 * max(mean_sq_norm, 1e-12)))
    for step in (-1.0, 1.0):
        if low <= x + step <= high and score(x + step) < score(x):
            while low <= x + step <= high and score(x + step) < score(x):
                x += step
            break
    # The decade's neighbours bracket the minimum; a parabola through the three (in log l2) places it
    # without more fits, and gives the loss at the previous choice when that is within reach of it.
    best, parabola = x, None
    if low <= x - 1 and x + 1 <= high:
        left, mid, right = score(x - 1), score(x), score(x + 1)
        curvature = left - 2 * mid + right
        if curvature > 0:
            best = x + float(np.clip((left - right) / (2 * curvature), -0.5, 0.5))
            parabola = lambda t: mid + (right - left) / 2 * (t - x) + curvature / 2 * (t - x) ** 2  # noqa: E731
    if smoothed:
        t = float(np.log10(previous))
        if parabola is not None and abs(t - x) <= 1.5:
            best_loss, previous_loss = parabola(best), parabola(t)
        else:
            best_loss, previous_loss = score(best, on_grid=False), score(t, on_grid=False)
        if previous_loss <= best_loss + tolerance * abs(best_loss):
            best = (1 - smoothing) * t + smoothing * best
    w0 = np.mean([solutions[(f, float(np.clip(x, low, high)))] for f in folds], axis=0)
    return 10.0 ** best, w0, sorted((10.0 ** k, v) for k, v in scores.items())


def _cv_rows(y_N: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """All row indices, or at most ``max_rows`` random ones that keep one row of every class."""
    if len(y_N) <= max_rows:
        return np.arange(len(y_N))
    first = np.array([rng.choice(np.flatnonzero(y_N == c)) for c in y_N[np.sort(np.unique(y_N, return_index=True)[1])]])
    rest = rng.permutation(np.setdiff1d(np.arange(len(y_N)), first))[:max(max_rows - len(first), 0)]
    return np.sort(np.concatenate([first, rest]))


def _fold_seed(random_state) -> int:
    # Folds from an int seed are the same at every fit; a Generator is left untouched (the samples draw from it).
    return random_state if isinstance(random_state, (int, np.integer)) else 0


def kron_curvature(W_C_D: np.ndarray, Phi_N_D: np.ndarray):
    """Eigen-decomposition of the Kronecker (K-FAC) approximation of the data Hessian.

    ``sum_i A_i (x) phi_i phi_i^T ~= mean_i(A_i) (x) Phi^T Phi`` with
    ``A_i = diag(p_i) - p_i p_i^T``. Returns ``(Qa_C_C, Qb_D_D, curvature_C_D)``:
    the eigenvalue of the eigenvector ``Qa[:, c] (x) Qb[:, d]`` is ``curvature[c, d]``.
    """
    P_N_C = softmax_inplace(Phi_N_D @ W_C_D.T)
    A_C_C = (np.diag(P_N_C.sum(axis=0)) - P_N_C.T @ P_N_C) / len(Phi_N_D)
    eig_a, Qa = np.linalg.eigh(A_C_C)
    eig_b, Qb = np.linalg.eigh(Phi_N_D.T @ Phi_N_D)
    return Qa, Qb, np.clip(np.outer(eig_a, eig_b), 0.0, None)


def evidence_update(W_C_D: np.ndarray, Phi_N_D: np.ndarray, l2: float, center_C_D: np.ndarray | None = None) -> float:
    """MacKay's fixed-point update of the prior precision for a MAP fit at ``l2``.

    ``gamma = sum_j lambda_j / (lambda_j + l2)`` counts the well-determined
    parameters (``lambda_j`` the eigenvalues of the data Hessian at the MAP, here
    from its Kronecker approximation), and the update is ``gamma / ||W||^2``.
    """
    _, _, curvature = kron_curvature(W_C_D, Phi_N_D)
    gamma = float(np.sum(curvature / (curvature + l2)))
    shift = W_C_D.ravel() if center_C_D is None else (W_C_D - center_C_D).ravel()
    norm2 = float(np.dot(shift, shift))
    if norm2 <= 0.0:
        return _EVIDENCE_BOUNDS[1]
    return float(np.clip(gamma / norm2, *_EVIDENCE_BOUNDS))


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Softmax regression fitted by L-BFGS, with posterior samples from a Laplace approximation.

    Parameters
    ----------
    l2 : the prior precision: the objective is ``sum CE + (l2/2) ||W||^2`` (summed,
        not averaged, over the training rows, bias included). ``"auto"`` (the
        default) learns it from the labeled rows at every fit: cross-validated
        held-out log-loss, or evidence maximization (MacKay's updates) when fewer
        than six rows can be held out; a number fixes it.
        The value used is ``l2_``, how it was chosen ``l2_method_`` ("cv",
        "evidence" or "fixed") and the cross-validation scores ``l2_path_``.
    l2_previous : with ``l2="auto"``, the prior the previous fit chose (the retrain before this
        one: the worker and ``assay simulate`` pass it). The new choice moves ``log l2`` a tenth of
        the way (``L2_SMOOTHING``) from it to the new cross-validated minimum, unless it has
        fallen more than 3% behind that minimum's held-out log-loss (then the minimum is taken).
        On labels active learning picked near the boundary that loss is flat over a decade of
        ``l2``, so each retrain's new random folds moved the choice by up to a decade; the accuracy
        stayed, but the model's confidence on the rest of the data swung (on adult, mean pool
        confidence 0.78 to 0.90 from one retrain to the next at a steady 0.84 accuracy), and with
        it the accuracy estimate. None (the default): no smoothing.
    fit_intercept : append a constant feature (the bias) before fitting.
    intercept_scaling : the value of that constant feature, ``s``. The bias is
        ``s`` times its weight, so its prior precision is ``l2 / s^2``. None (the
        default) means 1 when ``l2`` is a number (the objective above) and, with
        ``l2="auto"``, a tenth of the training rows' root-mean-square norm: a
        bias prior as wide as a feature's makes every item look alike a priori,
        the evidence then prefers a near-uniform model, and with a few classes
        holding two labels the bias decides every prediction (on clinc150 with
        171 labels: 0.11 test accuracy). The value used is ``intercept_scaling_``.
    max_iter, tol : L-BFGS iteration cap and projected-gradient tolerance.
    laplace : "auto", "full", "kron" or "diag": how the posterior covariance is
        approximated (see the module docstring).
    max_exact_hessian : the largest ``C*D`` for which "auto" uses the exact Hessian.
    posterior_l2 : the prior precision of the Laplace posterior (the samples BALD and its kin
        draw), ``(H_data(W*) + posterior_l2 I)^-1`` around the fitted ``W*``. ``"auto"`` (the
        default): the evidence-maximizing precision (MacKay's fixed point) when ``l2`` was
        chosen by cross-validation, else ``l2_``. ``"evidence"``, ``"same"`` (``l2_``) or a
        number force one. Why not ``l2_`` itself: cross-validation picks the prior that
        predicts best, which on sentence embeddings is weak (l2 ~ 1e-3); the posterior's
        width along directions no label spans is then 1/l2, and BALD ranked items by their
        distance from the labeled ones (correlation with the margin score 0.09 on SMS at
        100 labels) instead of by the model's doubt (0.81 with the evidence's l2 ~ 0.7).
        The value used is ``posterior_l2_``, computed with the samples (not at fit).
    random_state : int, numpy Generator or None; fixes the posterior samples.
    """

    # Every parameter's type and range (assay.models.params): what a project's model_params may set. The priors
    # need only be positive and finite (the retrain also passes the ones it learned); the sizes are bounded.
    PARAMS = {
        "l2": Param("number", 0, 1e300, low_open=True, choices=("auto",)),
        "fit_intercept": Param("bool"),
        "intercept_scaling": Param("number", 0, 1e300, low_open=True, nullable=True),
        "max_iter": Param("int", 1, 10_000),
        "tol": Param("number", 0, 1, low_open=True),
        "laplace": Param("choice", choices=LAPLACE_MODES),
        # The exact Hessian costs (C*D)^3: 8192 is about 8 times the default's second and 512 MB.
        "max_exact_hessian": Param("int", 0, 8192),
        "posterior_l2": Param("number", 0, 1e300, low_open=True, choices=POSTERIOR_L2_MODES),
        "l2_previous": Param("number", 0, 1e300, low_open=True, nullable=True),
        "random_state": SEED,
    }

    def __init__(self, l2="auto", fit_intercept=True, intercept_scaling=None, max_iter=1000, tol=1e-5, laplace="auto",
                 max_exact_hessian=4000, posterior_l2="auto", l2_previous=None, random_state=None):
        self.l2 = l2
        self.l2_previous = l2_previous
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.max_iter = max_iter
        self.tol = tol
        self.laplace = laplace
        self.max_exact_hessian = max_exact_hessian
        self.posterior_l2 = posterior_l2
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_class_labels(y)
        auto = isinstance(self.l2, str) and self.l2 == "auto"
        if not auto and (isinstance(self.l2, str) or not self.l2 > 0):
            raise ValueError(f"l2 must be 'auto' or positive (it makes the objective strictly convex), "
                             f"got {self.l2!r}")
        if self.laplace not in LAPLACE_MODES:
            raise ValueError(f"laplace must be one of {LAPLACE_MODES}, got {self.laplace!r}")
        if not (self.posterior_l2 in POSTERIOR_L2_MODES or
                (not isinstance(self.posterior_l2, (str, bool)) and self.posterior_l2 > 0)):
            raise ValueError(f"posterior_l2 must be one of {POSTERIOR_L2_MODES} or a positive number, "
                             f"got {self.posterior_l2!r}")
        if self.l2_previous is not None and (isinstance(self.l2_previous, (str, bool)) or not self.l2_previous > 0):
            raise ValueError(f"l2_previous must be None or a positive number, got {self.l2_previous!r}")
        prior = getattr(self, "_label_prior", None)
        if prior is not None and prior.dim != X.shape[1]:
            prior = None  # names embedded in another space than these features: no prior to start from
        if prior is None:
            self.classes_, y_N = np.unique(y, return_inverse=True)
        else:
            # Every named label is a class from the first fit on, the ones without labels included: the names
            # alone place them.
            self.classes_ = np.unique(np.concatenate([np.asarray(y, dtype=object),
                                                      np.asarray(prior.classes, dtype=object)]))
            y_N = np.searchsorted(self.classes_, np.asarray(y, dtype=object))
        self.intercept_scaling_ = self._intercept_scaling(X, auto)
        Phi_N_D = self._head_features(X)
        num_classes, dim = len(self.classes_), Phi_N_D.shape[1]
        self._center = None
        self.prior_scale_ = None
        if prior is not None:
            self.prior_scale_, center_C_D = self._prior_center(prior, X, y_N, dim)
            self._center = center_C_D.ravel() if self.prior_scale_ > 0 else None

        with one_blas_thread():
            w0, n_iter = (np.zeros(num_classes * dim) if self._center is None else self._center.copy()), 0
            if auto:
                l2, w0, n_iter = self._choose_l2(Phi_N_D, y_N, num_classes)
            else:
                l2 = float(self.l2)
            result = self._minimize(Phi_N_D, y_N, num_classes, l2, w0)
            n_iter += result.nit
        if not result.success and result.nit >= self.max_iter:
            warnings.warn(f"L-BFGS stopped after {result.nit} iterations without converging "
                          f"({result.message}); raise max_iter", ConvergenceWarning, stacklevel=2)
        # W_ is the exact minimizer of the objective at l2_ (what influence and the Laplace posterior assume).
        self.l2_ = float(l2)
        if not auto:
            self.l2_method_, self.l2_path_ = "fixed", []
        self.W_ = result.x.reshape(num_classes, dim)
        self.coef_ = self.W_[:, :X.shape[1]]
        self.intercept_ = (self.W_[:, X.shape[1]] * self.intercept_scaling_ if self.fit_intercept
                           else np.zeros(num_classes))
        self.n_iter_ = int(n_iter)
        self.laplace_ = self._laplace_mode(num_classes, dim)
        # The covariance factor is computed on first use (from these training rows) and
        # cached; keeping Phi costs N*D floats but lets fit return before the O((CD)^3) work.
        self._Phi_train = Phi_N_D
        self._y_train = y_N
        self._cov_factor = None
        self.posterior_l2_ = None
        self._sample_cache = None
        # One seed per fit, so every call draws the same weight samples (and k samples
        # are a prefix of k+1 samples).
        self._sample_seed = int(as_rng(self.random_state).integers(2**63 - 1))
        return self

    def set_label_prior(self, prior) -> "LogisticRegression":
        """Centre the Gaussian prior on the label names' zero-shot weights (an
        :class:`assay.models.zeroshot.LabelPrior`, in the features' space), or on 0 again (None).

        The objective becomes ``sum CE + (l2/2) ||W - a W0||^2`` with ``W0 = E / T`` (no bias) and every
        named label a class. ``a`` (``prior_scale_``, in [0, 2]) is how much the names are worth on this
        data: the scale that maximizes the labeled rows' likelihood under the names alone (a type-II fit of
        the prior's mean: the names predicted those labels without seeing them). Names that predict
        nothing (random strings) get ``a`` near 0, the plain prior; ``l2`` is then learned as before,
        around that centre. Not a parameter (``get_params``): the retrain sets it on each model it makes.
        """
        self._label_prior = prior
        return self

    def _prior_center(self, prior, X, y_N, dim):
        """``(a, centre (C, D))``: the names' weights scaled by ``a``, the bias column 0."""
        W0_C_D = np.zeros((len(self.classes_), dim))
        W0_C_D[:, :X.shape[1]] = prior.weights_for(self.classes_)
        if not len(y_N):
            return 1.0, W0_C_D
        Z_N_C = np.asarray(X, dtype=np.float64) @ W0_C_D[:, :X.shape[1]].T
        rows = np.arange(len(y_N))

        def nll(a):
            logits = a * Z_N_C
            return float(np.sum(logsumexp(logits, axis=1) - logits[rows, y_N]))

        found = optimize.minimize_scalar(nll, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-3})
        a = float(found.x) if nll(float(found.x)) < nll(0.0) else 0.0
        return a, a * W0_C_D

    def _choose_l2(self, Phi_N_D, y_N, num_classes):
        """``(l2, warm start, iterations)`` for l2="auto": cross-validated held-out log-loss when at least
        ``_CV_MIN_HELD_OUT`` rows can be held out, else evidence maximization.

        The Laplace evidence (with the Kronecker curvature, and MacKay's update) chose priors 10-30x too
        strong on many classes with few labels each (clinc-like data: l2 ~ 1 where held-out log-loss and
        accuracy both peak at 0.03-0.1), and a prior that strong lets the classes holding two labels take
        the predictions of those holding one; held-out loss measures that directly.
        """
        rng = np.random.default_rng(_fold_seed(self.random_state))
        rows = _cv_rows(y_N, _CV_MAX_ROWS, rng)
        fold_N = holdout_folds(y_N[rows], _CV_FOLDS, rng)
        if np.sum(fold_N >= 0) >= _CV_MIN_HELD_OUT:
            scale = len(y_N) / len(rows)
            previous = None if self.l2_previous is None else float(self.l2_previous) / scale
            l2, w0, self.l2_path_ = cross_validated_l2(Phi_N_D[rows], y_N[rows], num_classes, fold_N,
                                                       previous=previous, center=self._center)
            self.l2_method_ = "cv"
            return l2 * scale, w0, 0
        start = np.zeros(num_classes * Phi_N_D.shape[1]) if self._center is None else self._center.copy()
        l2, w0, n_iter = self._evidence_l2(Phi_N_D, y_N, num_classes, start)
        self.l2_method_, self.l2_path_ = "evidence", []
        return l2, w0, n_iter

    def _evidence_l2(self, Phi_N_D, y_N, num_classes, w0, l2=_EVIDENCE_START):
        """``(l2, weights, iterations)`` at MacKay's evidence fixed point, alternating fit and update.

        The fits inside the loop only steer the precision: a looser tolerance does, and each
        warm-starts from the last (the optimum moves smoothly).
        """
        dim, n_iter = Phi_N_D.shape[1], 0
        for _ in range(_EVIDENCE_MAX_ROUNDS):
            result = self._minimize(Phi_N_D, y_N, num_classes, l2, w0, tol=_EVIDENCE_FIT_TOL)
            w0, n_iter = result.x, n_iter + result.nit
            center = None if self._center is None else self._center.reshape(num_classes, dim)
            new_l2 = evidence_update(w0.reshape(num_classes, dim), Phi_N_D, l2, center)
            converged = abs(np.log(new_l2 / l2)) < _EVIDENCE_LOG_TOL
            l2 = new_l2
            if converged:
                break
        return l2, w0, n_iter

    def _posterior_precision(self) -> float:
        """The posterior's prior precision, per ``posterior_l2`` (see the class docstring)."""
        mode = self.posterior_l2
        if not isinstance(mode, str):
            return float(mode)
        if mode == "same" or (mode == "auto" and self.l2_method_ != "cv"):
            return self.l2_
        # Rows beyond the cross-validation cap change the evidence's l2 in proportion, as they do the
        # CV's: fit on the same subset and scale.
        rng = np.random.default_rng(_fold_seed(self.random_state))
        rows = _cv_rows(self._y_train, _CV_MAX_ROWS, rng)
        num_classes = len(self.classes_)
        l2, _, _ = self._evidence_l2(self._Phi_train[rows], self._y_train[rows], num_classes,
                                     self.W_.ravel().copy(), l2=self.l2_ * len(rows) / len(self._y_train))
        return l2 * len(self._y_train) / len(rows)

    def _minimize(self, Phi_N_D, y_N, num_classes, l2, w0, tol=None):
        tol = float(self.tol) if tol is None else max(float(self.tol), tol)
        return optimize.minimize(
            objective, w0, args=(Phi_N_D, y_N, num_classes, float(l2), getattr(self, "_center", None)),
            jac=True, method="L-BFGS-B",
            options={"maxiter": int(self.max_iter), "gtol": tol, "ftol": 1e-12},
        )

    def _intercept_scaling(self, X, auto: bool) -> float:
        if self.intercept_scaling is not None:
            scaling = float(self.intercept_scaling)
            if not scaling > 0:
                raise ValueError(f"intercept_scaling must be positive, got {self.intercept_scaling!r}")
            return scaling
        if not auto:
            return 1.0
        rms_norm = float(np.sqrt(np.mean(np.einsum("nd,nd->n", X, X))))
        return 0.1 * rms_norm if rms_norm > 0 else 1.0

    def _head_features(self, X) -> np.ndarray:
        if self.fit_intercept:
            return np.hstack([X, np.full((len(X), 1), self.intercept_scaling_, dtype=X.dtype)])
        return X

    def _laplace_mode(self, num_classes: int, dim: int) -> str:
        if self.laplace != "auto":
            return self.laplace
        if num_classes * dim <= self.max_exact_hessian:
            return "full"
        if dim <= self.max_exact_hessian:
            return "kron"
        return "diag"

    # -- prediction ---------------------------------------------------------

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    def predict_proba(self, X):
        X = self._check_X(X)
        with one_blas_thread():
            logits_N_C = X @ self.coef_.T.astype(X.dtype) + self.intercept_.astype(X.dtype)
        return softmax_inplace(logits_N_C).astype(np.float64, copy=False)

    def predict(self, X):
        probs_N_C = self.predict_proba(X)
        return self.classes_[np.argmax(probs_N_C, axis=1)]

    def predict_proba_samples(self, X, k):
        """``(N, k, C)`` class probabilities under k weight samples from the Laplace posterior.

        The samples are drawn once per fitted model from its own seed, so sample j
        is the same function for every item and in every call. They are computed
        and returned in float32: the (N, K, C) block is the biggest array a
        retrain makes, and float32 halves both its memory and the time to fill it.
        """
        X = self._check_X(X).astype(np.float32, copy=False)
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        W_K_C_D = self.weight_samples(k).astype(np.float32)
        num_classes = len(self.classes_)
        dim = X.shape[1]
        # One matmul for all K samples: columns ordered (k, c).
        coef_D_KC = W_K_C_D[:, :, :dim].reshape(k * num_classes, dim).T
        bias_KC = (W_K_C_D[:, :, dim].reshape(-1) * np.float32(self.intercept_scaling_) if self.fit_intercept
                   else np.zeros(k * num_classes, dtype=np.float32))
        out_N_K_C = np.empty((len(X), k, num_classes), dtype=np.float32)
        with one_blas_thread():
            for start in range(0, len(X), _CHUNK_ROWS):
                logits = X[start:start + _CHUNK_ROWS] @ coef_D_KC
                logits += bias_KC
                out_N_K_C[start:start + _CHUNK_ROWS] = softmax_inplace(logits.reshape(-1, k, num_classes))
        return out_N_K_C

    def weight_samples(self, k: int) -> np.ndarray:
        """``(k, C, D)`` weight samples ``W* + noise``, noise ~ N(0, H^-1) (approximated per ``laplace_``)."""
        check_is_fitted(self)
        cached = self._sample_cache
        if cached is None or len(cached) < k:
            num_classes, dim = self.W_.shape
            z_K_C_D = np.random.default_rng(self._sample_seed).standard_normal((k, num_classes, dim))
            with one_blas_thread():
                cached = self.W_ + self._scale_noise(z_K_C_D)
            self._sample_cache = cached
        return cached[:k]

    def _scale_noise(self, z_K_C_D: np.ndarray) -> np.ndarray:
        """Map standard normal noise to N(0, H^-1) noise, in the chosen approximation."""
        k, num_classes, dim = z_K_C_D.shape
        factor = self.covariance_factor()
        if self.laplace_ == "full":
            # H = U^T U, so U^-1 z has covariance U^-1 U^-T = H^-1.
            noise = linalg.solve_triangular(factor, z_K_C_D.reshape(k, -1).T, lower=False)
            return noise.T.reshape(k, num_classes, dim)
        if self.laplace_ == "kron":
            Qa_C_C, Qb_D_D, scale_C_D = factor
            # (Qa (x) Qb) vec(M) = vec(Qa M Qb^T) for row-major vec.
            return np.einsum("ac,kcd,bd->kab", Qa_C_C, z_K_C_D * scale_C_D, Qb_D_D, optimize=True)
        return z_K_C_D / np.sqrt(factor)

    def covariance_factor(self):
        """The cached Laplace factor: upper Cholesky U of H ("full"), the Kronecker
        eigenbases and scales ("kron"), or the Hessian diagonal ("diag")."""
        check_is_fitted(self)
        if self._cov_factor is None:
            with one_blas_thread():
                self._cov_factor = self._factorize()
        return self._cov_factor

    def _factorize(self):
        if self.posterior_l2_ is None:
            self.posterior_l2_ = float(self._posterior_precision())
        W, Phi, l2 = self.W_, self._Phi_train, self.posterior_l2_
        if self.laplace_ == "full":
            H = exact_hessian_upper(W, Phi, l2)
            return linalg.cholesky(H, lower=False, overwrite_a=True, check_finite=False)
        if self.laplace_ == "kron":
            Qa, Qb, curvature = kron_curvature(W, Phi)
            return Qa, Qb, 1.0 / np.sqrt(curvature + l2)
        P_N_C = softmax_inplace(Phi @ W.T)
        return (P_N_C * (1.0 - P_N_C)).T @ (Phi * Phi) + l2

    def hessian(self) -> np.ndarray:
        """The exact Hessian of the training objective at the optimum (full symmetric matrix)."""
        check_is_fitted(self)
        with one_blas_thread():
            H = exact_hessian_upper(self.W_, self._Phi_train, self.l2_)
        return np.triu(H) + np.triu(H, 1).T

    # -- what strategies need beyond probabilities ---------------------------

    def embed(self, X):
        """The features the model acts on (without the constant column), in X's float dtype
        (float32 stays float32, half the memory on big pools). A read-only view, not a copy:
        copying a 100,000 x 384 pool cost a tenth of a retrain round."""
        features = self._check_X(X).view()
        features.flags.writeable = False
        return features

    def linear_head(self, X):
        """``(W_C_D, Phi_N_D, l2)``: the fitted weights, the head features of X
        (the constant column ``intercept_scaling_`` included when fit_intercept) and
        the prior precision ``l2_``: ``W_`` minimizes ``sum CE + (l2_/2) ||W||^2`` over them."""
        X = self._check_X(X).astype(np.float64, copy=False)
        return self.W_.copy(), self._head_features(X), self.l2_

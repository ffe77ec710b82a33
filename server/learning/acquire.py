"""One round of the loop: fit the model on the labeled items, then pick the next batch.

This is the only implementation of the round. The retrain worker calls it on
features read from the database; ``assay simulate`` calls it on a data set
whose labels are revealed only for the indices it returns.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from assay import strategies
from assay.strategies import EMBEDDINGS, LABELED_EMBEDDINGS, LINEAR_HEAD, PROBS, SAMPLES, LinearHead, ModelOutputs

from assay.models import capabilities, make_model, n_samples_supported
from assay.evaluation.temperature import first_guesses
from assay.models.logreg import holdout_folds
from .defaults import K_SAMPLES

MIN_PER_CLASS_FOR_CV = 2
# A key of model_params that fit_model takes as its label_prior (evaluate.fixed_prior: the out-of-fold fits start
# from the names the round's model started from). Never a project's setting: only code puts it there.
LABEL_PRIOR = "__label_prior__"


@dataclass
class RoundResult:
    """What a round chose, and what it cost."""

    indices: np.ndarray  # into the pool, best first
    scores: np.ndarray
    strategy: str  # the queue rows' mark: the strategy's name, or its cold start's (strategies.cold_start_label)
    cold_start: bool
    model: object | None = None
    classes: list = field(default_factory=list)
    probs_B_C: np.ndarray | None = None  # predictions for the chosen items (per label for multi-label)
    fit_seconds: float = 0.0
    acquire_seconds: float = 0.0
    # The rest of the pool ranked beyond the batch (when asked for a queue deeper than it): see _beyond.
    more_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    more_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    more_probs: np.ndarray | None = None
    more_strategy: str = ""  # their mark (strategies.beyond_label)
    more_draw: str = ""  # how they were drawn: strategies.UNIFORM, or DETERMINISTIC (the top of a ranking)
    # The fitted model's predicted class (index into ``classes``) and its first guesses' probabilities
    # (best first; column 0 is the confidence) on every pool row: what the accuracy estimate averages
    # (single-label rounds with a model only).
    pool_pred_N: np.ndarray | None = None
    pool_top_N_K: np.ndarray | None = None
    # The registered strategy that picked a cold start's batch (the strategy's declared cold_start).
    cold_start_by: str = ""


def can_fit(y) -> bool:
    """A classifier needs at least two classes among the labels."""
    return len(y) >= 2 and len(set(map(str, y))) >= 2


def fit_model(model_spec: str, model_params: dict, X, y, random_state=None, l2_previous=None, label_prior=None):
    """``l2_previous``: the prior the previous retrain learned (:func:`learned_prior`), given to a model that
    learns its own (``l2="auto"``) so that its choice moves smoothly from it (LogisticRegression).
    ``label_prior``: the label names' zero-shot weights (:class:`assay.models.zeroshot.LabelPrior`), for a
    model that can start from them (``set_label_prior``: LogisticRegression); others ignore it."""
    params = dict(model_params or {})
    label_prior = params.pop(LABEL_PRIOR, label_prior)
    model = make_model(model_spec, **params)
    own = model.get_params() if hasattr(model, "get_params") else {}
    if random_state is not None and "random_state" in own:
        model.set_params(random_state=random_state)
    if l2_previous is not None and "l2_previous" in own and own.get("l2") == "auto":
        model.set_params(l2_previous=float(l2_previous))
    if label_prior is not None and hasattr(model, "set_label_prior"):
        model.set_label_prior(label_prior)
    return _quiet_fit(model, X, y)


# scikit-learn's hint that many distinct values may be a regression target: never true of label names, and
# with many classes and a label or two each it came with every fit of a plug-in model (the built-ins check
# their labels without it: assay.models._targets).
_REGRESSION_HINT = "The number of unique classes is greater than 50%"
_SAID: set = set()  # (category, file, line) of the warnings this process has passed on once


def _quiet_fit(model, X, y):
    """``model.fit(X, y)``, saying each of its warnings once per process instead of once per fit: a
    simulation or a busy project fits thousands of times, and one line per fit buries everything else."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = model.fit(X, y)
    for w in caught:
        key = (w.category, w.filename, w.lineno)
        if str(w.message).startswith(_REGRESSION_HINT) or key in _SAID:
            continue
        _SAID.add(key)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return fitted


def learned_prior(model) -> float | None:
    """The prior precision a fit chose by cross-validation, for the next retrain's ``l2_previous``."""
    return float(model.l2_) if getattr(model, "l2_method_", None) == "cv" else None


def _held_out_split(y, rng: np.random.Generator, fraction=0.2):
    """Train/validation indices for influence: stratified, every class kept in training.

    A class with two or more labels gives at least one to validation, so small
    seed sets (two per class) still have a held-out gradient.
    """
    y = np.asarray(y)
    val = []
    for cls in np.unique(y.astype(str)):
        idx = np.flatnonzero(y.astype(str) == cls)
        rng.shuffle(idx)
        n_val = 0 if len(idx) < 2 else min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        val.extend(idx[:n_val])
    val = np.array(sorted(val), dtype=int)
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


def _can_hold_out(y) -> bool:
    """Whether a held-out split leaves at least two classes to fit and one item to validate on."""
    y = np.asarray(y).astype(str)
    _, counts = np.unique(y, return_counts=True)
    return len(counts) >= 2 and counts.max() >= 2


def model_outputs(model, strategy, X_pool, *, X_labeled=None, y_labeled=None, model_spec=None,
                  model_params=None, k_samples=K_SAMPLES, rng=None) -> ModelOutputs:
    """Ask the model for what the strategy needs (and may use), nothing more."""
    wanted = strategy.needs | strategy.uses
    have = capabilities(model)
    out = {}
    if PROBS in wanted or SAMPLES not in wanted:
        out["probs_N_C"] = model.predict_proba(X_pool)
    if SAMPLES in wanted:
        # A committee has as many posterior samples as members, no more.
        k = min(k_samples, n_samples_supported(model) or k_samples)
        out["probs_N_K_C"] = model.predict_proba_samples(X_pool, k)
    if EMBEDDINGS in wanted:
        out["embeddings_N_D"] = model.embed(X_pool) if EMBEDDINGS in have else X_pool
        if LABELED_EMBEDDINGS in wanted and X_labeled is not None and X_labeled.shape[0]:
            out["labeled_embeddings_L_D"] = model.embed(X_labeled) if EMBEDDINGS in have else X_labeled
    if LINEAR_HEAD in wanted:
        out["head"] = _linear_head(model_spec, model_params, X_labeled, y_labeled, X_pool, rng,
                                   folds=strategy.params.get("folds", 1))
    return ModelOutputs(**out)


def _linear_head(model_spec, model_params, X, y, X_pool, rng, folds: int = 1):
    """The head(s) influence scores with.

    ISAL needs a validation gradient from labeled items the head was NOT fit on: at the optimum
    the training gradient is only the regularizer's. One fold holds out a fifth of the labels, as
    the paper does; with ``folds`` > 1 the labels are cross-fitted: head k trains on every fold
    but k and validates on fold k, so each label validates once (a fifth of 100 labels is 20
    items). Each head chooses its own prior: reusing the full model's, scaled to the head's rows, was
    twice as fast but lost 0.007 AULC on adult (docs/RESULTS.md).
    """
    y = np.asarray(y)
    if folds <= 1:
        train, val = _held_out_split(y, rng)
        splits = [(train, val)]
    else:
        fold_N = holdout_folds(y.astype(str), int(folds), rng)
        splits = [(np.flatnonzero(fold_N != k), np.flatnonzero(fold_N == k)) for k in range(int(folds))]
    heads, pool_features = [], None
    for train, val in splits:
        if not len(val) or not can_fit(y[train]):
            continue
        head_model = fit_model(model_spec, model_params, X[train], y[train], random_state=int(rng.integers(2**31)))
        head, pool_features = _head(head_model, X, y, X_pool, train, val, pool_features)
        heads.append(head)
    if not heads:
        raise ValueError("influence needs at least two labeled items of some class to hold one out")
    return heads[0] if len(heads) == 1 else tuple(heads)


def _head(head_model, X, y, X_pool, train, val, pool_features):
    """A LinearHead; the pool's head features are computed once and shared while the heads map them alike."""
    index = {c: i for i, c in enumerate(head_model.classes_)}
    W, X_train, l2 = head_model.linear_head(X[train])
    _, X_val, _ = head_model.linear_head(X[val])
    if pool_features is None or not np.array_equal(head_model.linear_head(X_pool[:1])[1], pool_features[:1]):
        pool_features = head_model.linear_head(X_pool)[1]
    keep = np.array([c in index for c in y[val]])
    y_val = np.array([index[c] for c in y[val][keep]], dtype=int)
    head = LinearHead(W_C_D=W, X_train_N_D=X_train, y_train_N=np.array([index[c] for c in y[train]]),
                      X_val_M_D=X_val[keep], y_val_M=y_val, X_pool_P_D=pool_features, l2=float(l2))
    return head, pool_features


def cold_start(strategy, X_pool, batch_size, rng, X_labeled=None) -> RoundResult:
    """No model yet: a batch chosen on the item features alone by the strategy's declared cold start (a DPP
    for diversity, typiclust for default, random for the rest)."""
    start = time.perf_counter()
    if len(X_pool) and batch_size > 0:
        by = strategy.cold_start
        labeled = X_labeled if X_labeled is not None and len(X_labeled) else None
        outputs = ModelOutputs(embeddings_N_D=X_pool, labeled_embeddings_L_D=labeled)
        idx = strategies.get(by).select(outputs, batch_size, random_state=rng).indices
    else:
        by, idx = strategies.BASELINE, np.zeros(0, dtype=np.intp)  # nothing to pick from
    return RoundResult(np.asarray(idx), np.zeros(len(idx)), strategies.cold_start_label(by), True,
                       acquire_seconds=time.perf_counter() - start, cold_start_by=by)


# What ranks the queue beyond a zero-shot batch: the margin of the label names' suggestions.
ZERO_SHOT_MARGIN = f"zero-shot {strategies.MARGIN}"


def zero_shot_round(strategy, prior, X_pool, batch_size: int, rng, X_labeled=None, depth: int = 0) -> RoundResult:
    """No model yet, but label names: the strategy's cold-start batch, each item with the names' suggestion,
    and the queue beyond it ranked by where the names are least sure (margin), each with its suggestion."""
    result = cold_start(strategy, X_pool, batch_size, rng, X_labeled)
    start = time.perf_counter()
    from assay.models.zeroshot import ZeroShotClassifier

    model = ZeroShotClassifier(prior)
    probs = model.predict_proba(X_pool)
    result.model, result.classes = model, list(prior.classes)
    result.probs_B_C = probs[result.indices]
    if depth > len(result.indices):
        scores_N = np.asarray(strategies.uncertainty.margin(probs), dtype=float)
        result.more_indices = _beyond(scores_N, result.indices, depth - len(result.indices))
        result.more_scores = scores_N[result.more_indices]
        result.more_probs = probs[result.more_indices]
        result.more_strategy, result.more_draw = strategies.beyond_label(ZERO_SHOT_MARGIN), strategies.DETERMINISTIC
    result.acquire_seconds += time.perf_counter() - start
    return result


def run_round(*, model_spec: str, model_params: dict | None, strategy_name: str, strategy_params: dict | None,
              X_labeled, y_labeled, X_pool, batch_size: int, multi_label: bool = False, label_names=None,
              random_state=None, k_samples: int = K_SAMPLES, depth: int = 0,
              l2_previous: float | None = None, cluster=None, label_prior=None) -> RoundResult:
    """Fit on (X_labeled, y_labeled) and choose ``batch_size`` pool rows.

    ``y_labeled`` holds class names for single-label projects, and lists of
    names for multi-label ones (then each label gets a one-vs-rest model and
    the per-label scores are summed). ``l2_previous``: see :func:`fit_model`.

    With ``depth`` beyond the batch, the round also ranks up to ``depth - batch_size``
    more pool rows by a per-item score (``more_*``), so a server's queue outlasts a
    batch while the next retrain runs. The batch itself is chosen exactly as without.

    ``cluster``: a ``distributed.Client`` to score the pool on (:mod:`assay.learning.cluster`) when the
    strategy has a cluster form; the picks are the same as in one process except for dpp's shortlist.

    ``label_prior`` (single-label text projects with MiniLM features: :mod:`assay.learning.zeroshot`): the
    label names' zero-shot classifier. Before a model can be fit it suggests a label for every queued item
    (:func:`zero_shot_round`); after, a model that takes it starts from it (:func:`fit_model`).
    """
    rng = np.random.default_rng(random_state)
    strategy = strategies.get(strategy_name, **(strategy_params or {}))
    batch_size = min(int(batch_size), len(X_pool))
    if multi_label:
        return _run_multi_label(model_spec, model_params, strategy, X_labeled, y_labeled, X_pool, batch_size,
                                label_names, rng, k_samples, depth)
    y = np.asarray(y_labeled, dtype=object)
    if label_prior is not None and X_pool is not None and X_pool.shape[1] != label_prior.dim:
        label_prior = None
    if not can_fit(y):
        if label_prior is not None:
            return zero_shot_round(strategy, label_prior, X_pool, batch_size, rng, X_labeled, depth)
        return cold_start(strategy, X_pool, batch_size, rng, X_labeled)
    t0 = time.perf_counter()
    model = fit_model(model_spec, model_params, X_labeled, y, random_state=int(rng.integers(2**31)),
                      l2_previous=l2_previous, label_prior=label_prior)
    t1 = time.perf_counter()
    if LINEAR_HEAD in strategy.needs and not _can_hold_out(y):
        # Influence needs labeled items the head was not fit on; until some class has two, pick at random.
        return cold_start(strategy, X_pool, batch_size, rng)
    if cluster is not None and not multi_label:
        from .cluster import cluster_round, supports

        if supports(strategy):
            chosen = cluster_round(cluster, X_pool, model, strategy, batch_size, rng, depth=depth)
            result = RoundResult(chosen.indices, chosen.scores, strategy.name, False, model, list(model.classes_),
                                 chosen.probs_B_C, t1 - t0, more_indices=chosen.more_indices,
                                 more_scores=chosen.more_scores, more_probs=chosen.more_probs,
                                 more_strategy=chosen.more_strategy, more_draw=strategy.beyond_draw,
                                 pool_pred_N=chosen.pool_pred_N,
                                 pool_top_N_K=chosen.pool_top_N_K)
            result.acquire_seconds = time.perf_counter() - t1
            return result
    outputs = model_outputs(model, strategy, X_pool, X_labeled=X_labeled, y_labeled=y, model_spec=model_spec,
                            model_params=model_params, k_samples=k_samples, rng=rng)
    selection = strategy.select(outputs, batch_size, random_state=rng)
    probs = outputs.probs_N_C[selection.indices] if outputs.probs_N_C is not None else \
        model.predict_proba(X_pool[selection.indices])
    result = RoundResult(selection.indices, selection.scores, strategy.name, False, model, list(model.classes_),
                         probs, t1 - t0)
    result.pool_pred_N, result.pool_top_N_K = _top_class(outputs, model, X_pool)
    if depth > batch_size:
        scores_N = _deep_scores(strategy, outputs, model, X_pool, rng)
        result.more_strategy, result.more_draw = strategy.beyond_label, strategy.beyond_draw
        result.more_indices = _beyond(scores_N, selection.indices, depth - batch_size)
        result.more_scores = scores_N[result.more_indices]
        result.more_probs = outputs.probs_N_C[result.more_indices] if outputs.probs_N_C is not None else \
            model.predict_proba(X_pool[result.more_indices])
    result.acquire_seconds = time.perf_counter() - t1
    return result


def _top_class(outputs: ModelOutputs, model, X_pool) -> tuple[np.ndarray, np.ndarray]:
    """Each pool row's predicted class and its first guesses' probabilities, from what the round already
    computed."""
    if outputs.probs_N_C is not None:
        probs = outputs.probs_N_C
    elif outputs.probs_N_K_C is not None:
        probs = outputs.probs_N_K_C.mean(axis=1)
    else:
        probs = model.predict_proba(X_pool)
    return np.argmax(probs, axis=1), first_guesses(probs)


def _deep_scores(strategy, outputs: ModelOutputs, model, X_pool, rng) -> np.ndarray:
    """A per-item score for the whole pool to rank the queue beyond the batch: the one the strategy declares
    (``Strategy.beyond``). Its own score when it selects by one (already cheap: computed for the batch
    anyway); a uniform draw's a fresh random order; for the rest (batch-aware, diversity or influence scores,
    costly or meaningless item by item) the model's margin, asked of the model when the outputs lack it.
    """
    scores_N = strategy.beyond_scores(outputs, rng)
    if scores_N is None:
        scores_N = strategy.beyond_scores(ModelOutputs(probs_N_C=model.predict_proba(X_pool)), rng)
    return scores_N


def _beyond(scores_N: np.ndarray, batch: np.ndarray, k: int) -> np.ndarray:
    """The k best-scored pool rows outside the batch, best first (ties by index)."""
    scores = np.array(scores_N, dtype=float)
    scores[np.asarray(batch, dtype=np.intp)] = -np.inf
    scores[np.isnan(scores)] = -np.inf
    k = min(int(k), len(scores) - len(batch))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    return strategies.registry._top_k(scores, k).astype(np.intp)


def _run_multi_label(model_spec, model_params, strategy, X_labeled, y_labeled, X_pool, batch_size,
                     label_names, rng, k_samples, depth=0) -> RoundResult:
    if not strategy.multi_label:
        raise ValueError(f"strategy {strategy.name!r} works on single-label projects only")
    label_names = list(label_names or sorted({v for ys in y_labeled for v in ys}))
    t0 = time.perf_counter()
    models = {}
    for name in label_names:
        y_bin = np.array(["yes" if name in ys else "no" for ys in y_labeled], dtype=object)
        if can_fit(y_bin):
            models[name] = fit_model(model_spec, model_params, X_labeled, y_bin,
                                     random_state=int(rng.integers(2**31)))
    t1 = time.perf_counter()
    if not models:
        return cold_start(strategy, X_pool, batch_size, rng)
    total = np.zeros(len(X_pool))
    p_yes = np.full((len(X_pool), len(label_names)), np.nan)
    for j, name in enumerate(label_names):
        model = models.get(name)
        if model is None:
            continue
        outputs = model_outputs(model, strategy, X_pool, k_samples=k_samples, rng=rng)
        probs = outputs.probs_N_C if outputs.probs_N_C is not None else model.predict_proba(X_pool)
        p_yes[:, j] = probs[:, list(model.classes_).index("yes")]
        if strategy.by_score:
            total += strategy.score(outputs)
    if not strategy.by_score:
        selection = strategy.select(ModelOutputs(pool_size=len(X_pool)), batch_size, random_state=rng)
    else:
        selection = strategy.select_by_scores(total, batch_size, random_state=rng)
    result = RoundResult(selection.indices, selection.scores, strategy.name, False, models, label_names,
                         p_yes[selection.indices], t1 - t0)
    if depth > batch_size:
        # The summed per-label scores, or (a strategy that needs no model: random) its own order.
        scores_N = total if strategy.by_score else strategy.beyond_scores(ModelOutputs(pool_size=len(X_pool)), rng)
        result.more_strategy, result.more_draw = strategy.beyond_label, strategy.beyond_draw
        result.more_indices = _beyond(scores_N, selection.indices, depth - batch_size)
        result.more_scores = scores_N[result.more_indices]
        result.more_probs = p_yes[result.more_indices]
    result.acquire_seconds = time.perf_counter() - t1
    return result


def estimate_accuracy(model_spec: str, model_params: dict | None, X, y, *, multi_label=False, label_names=None,
                      folds: int = 5, random_state=None) -> tuple[float | None, float | None, str]:
    """Cross-validated accuracy on the labeled set (mean, std, method); None when too few labels."""
    from sklearn.model_selection import KFold, StratifiedKFold

    rng = np.random.default_rng(random_state)
    n = len(y)
    if multi_label:
        label_names = list(label_names or sorted({v for ys in y for v in ys}))
        Y = np.array([[name in ys for name in label_names] for ys in y])
        k = min(folds, n)
        if k < 2:
            return None, None, "too few labels"
        scores = []
        for train, test in KFold(k, shuffle=True, random_state=int(rng.integers(2**31))).split(X):
            correct = []
            for j, name in enumerate(label_names):
                yb = np.where(Y[train, j], "yes", "no").astype(object)
                if not can_fit(yb):
                    pred = np.full(len(test), yb[0] == "yes") if len(yb) else np.zeros(len(test), bool)
                else:
                    m = fit_model(model_spec, model_params, X[train], yb, random_state=int(rng.integers(2**31)))
                    pred = m.predict_proba(X[test])[:, list(m.classes_).index("yes")] >= 0.5
                correct.append(pred == Y[test, j])
            scores.append(float(np.mean(correct)))
        return float(np.mean(scores)), float(np.std(scores)), f"{k}-fold CV, per-label accuracy"
    y = np.asarray(y, dtype=object)
    _, counts = np.unique(y.astype(str), return_counts=True)
    if len(counts) < 2 or n < 4:
        return None, None, "too few labels"
    k = int(min(folds, counts.min())) if counts.min() >= MIN_PER_CLASS_FOR_CV else 0
    if k >= 2:
        splitter = StratifiedKFold(k, shuffle=True, random_state=int(rng.integers(2**31)))
        splits = splitter.split(X, y.astype(str))
        method = f"{k}-fold stratified CV"
    else:
        k = min(folds, n)
        splits = KFold(k, shuffle=True, random_state=int(rng.integers(2**31))).split(X)
        method = f"{k}-fold CV"
    scores = []
    for train, test in splits:
        if not can_fit(y[train]):
            scores.append(float(np.mean(y[test] == y[train][0])))
            continue
        m = fit_model(model_spec, model_params, X[train], y[train], random_state=int(rng.integers(2**31)))
        pred = np.asarray(m.classes_, dtype=object)[np.argmax(m.predict_proba(X[test]), axis=1)]
        scores.append(float(np.mean(pred == y[test])))
    return float(np.mean(scores)), float(np.std(scores)), method

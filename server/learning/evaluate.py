"""The fits the accuracy estimate needs beyond the round's own: out-of-fold predictions on the labeled items."""
from __future__ import annotations

from collections import Counter

import numpy as np

from assay import store
from assay.evaluation.temperature import TOP_K, answer_rank, first_guesses
from assay.models.logreg import holdout_folds
from .acquire import LABEL_PRIOR, can_fit, fit_model, learned_prior
from .queueing import AUDIT

OOF_FOLDS = 5


def prequential_tests(db, project_id: int, labels: dict[int, object]) -> list[dict]:
    """Per labeled item served with a prediction: the serving version, whether it was an audit pick, the
    confidence shown and whether the prediction matched the item's label (``labels``: item -> label), and
    the first guesses shown ([label, probability] pairs, best first; None for servings recorded before
    they were kept)."""
    return [{"item_id": s["item_id"], "version": s["version"], "audit": s["strategy"] == AUDIT,
             "predicted": s["predicted"], "label": labels[s["item_id"]], "confidence": s["confidence"],
             "correct": s["predicted"] == labels[s["item_id"]], "top": s["top"]}
            for s in store.served_predictions(db, project_id) if s["item_id"] in labels]


def served_guesses(tests: list[dict], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The tests' first guesses as the estimate takes them: their probabilities (best first, 0 where fewer
    were kept) and where the answer stood among them (-1: not listed). A test recorded without them
    (before they were kept) is its confidence alone, its answer's place known only when the guess was right."""
    width = min(TOP_K, max(n_classes, 1))
    top_M_K = np.zeros((len(tests), width))
    labels = []
    for m, t in enumerate(tests):
        pairs = t.get("top") or [[t["predicted"], t["confidence"]]]
        pairs = pairs[:width]
        top_M_K[m, :len(pairs)] = [float(p) for _, p in pairs]
        labels.append([label for label, _ in pairs])
    return top_M_K, answer_rank(labels, [t["label"] for t in tests])


def fixed_prior(model_params: dict | None, fitted) -> dict:
    """The round's model parameters with the prior it chose fixed: choosing it again inside every fold
    (a cross-validation inside a cross-validation) would cost ten fits."""
    params = dict(model_params or {})
    if getattr(fitted, "l2_method_", None) == "cv" and params.get("l2", "auto") == "auto":
        params.update(l2=fitted.l2_, intercept_scaling=fitted.intercept_scaling_)
    if getattr(fitted, "_label_prior", None) is not None:
        # The folds start from the same names as the round's model: that l2 was chosen around them.
        params[LABEL_PRIOR] = fitted._label_prior
    return params


def out_of_fold(model_spec: str, model_params: dict | None, X_L_D, y_L, *, folds: int = OOF_FOLDS,
                random_state=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each labeled row's confidence (probability of the predicted class) and correctness under a model
    fitted without it, its fold, and that model's first guesses' probabilities (best first; column 0 is
    the confidence); NaN (fold -1) for rows no fold holds out (one row per class trains in every fold)."""
    return out_of_fold_predictions(model_spec, model_params, X_L_D, y_L, folds=folds, random_state=random_state)[1:]


def uniform_draws(db, project_id: int, item_ids: list[int]) -> set[int]:
    """The items among ``item_ids`` whose first serving was a uniform draw from the pool: an audit, or a pick
    whose selection probability is k/N (the random strategy, a random cold start, random rows beyond the
    batch, the random fill). Each is a sample of the data, as an audit is; deterministic picks (probability
    1) and draws with no closed form (None) are not."""
    out = set()
    for item_id, servings in store.item_servings(db, project_id, item_ids).items():
        first = servings[0] if servings else None
        if first and (first["strategy"] == AUDIT or (first["selection_prob"] is not None
                                                     and 0 < first["selection_prob"] < 1)):
            out.add(item_id)
    return out


def out_of_fold_predictions(model_spec: str, model_params: dict | None, X_L_D, y_L, *, folds: int = OOF_FOLDS,
                            random_state=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """out_of_fold with, first, each row's predicted class (None where no fold holds the row out)."""
    rng = np.random.default_rng(random_state)
    y_L = np.asarray(y_L, dtype=object)
    pred_L = np.full(len(y_L), None, dtype=object)
    conf_L = np.full(len(y_L), np.nan)
    correct_L = np.full(len(y_L), np.nan)
    fold_L = holdout_folds(y_L.astype(str), folds, rng)
    n_classes = len(set(map(str, y_L)))
    top_L_K = np.full((len(y_L), min(TOP_K, max(n_classes, 1))), np.nan)
    for k in range(folds):
        test = np.flatnonzero(fold_L == k)
        train = np.flatnonzero(fold_L != k)
        if not len(test) or not can_fit(y_L[train]):
            continue
        model = fit_model(model_spec, model_params, X_L_D[train], y_L[train], random_state=int(rng.integers(2**31)))
        probs = model.predict_proba(X_L_D[test])
        best = np.argmax(probs, axis=1)
        pred_L[test] = np.asarray(model.classes_, dtype=object)[best]
        conf_L[test] = probs[np.arange(len(test)), best]
        correct_L[test] = pred_L[test] == y_L[test]
        # A fold without some class has fewer columns: its missing classes' probability is 0.
        top = first_guesses(probs, top_L_K.shape[1])
        top_L_K[test] = 0.0
        top_L_K[test, :top.shape[1]] = top
    return pred_L, conf_L, correct_L, fold_L, top_L_K


def labeled_predictions(model, X_L_D, pred_L, conf_L) -> list[dict]:
    """Per labeled row, the prediction search shows beside its label: the out-of-fold one where a fold held
    the row out (a model that never saw this label: what finds a wrong one), else ``model``'s own."""
    rows = [{"label": p, "confidence": float(c), "held_out": True} for p, c in zip(pred_L, conf_L)]
    missing = [k for k, p in enumerate(pred_L) if p is None]
    if missing:
        probs = model.predict_proba(X_L_D[missing])
        best = np.argmax(probs, axis=1)
        classes = np.asarray(model.classes_, dtype=object)
        for k, b, p in zip(missing, best, probs):
            rows[k] = {"label": classes[b], "confidence": float(p[b]), "held_out": False}
    for row in rows:
        row["label"] = str(row["label"])
        row["confidence"] = round(row["confidence"], 4)
    return rows


def evaluate_round(*, model, model_spec: str, model_params: dict | None, X_labeled, y_labeled, pool_pred_N,
                   pool_top_N_K, tests: list[dict], stop_ids: list[int], X_stop, reference_stop: dict | None,
                   history: list[dict], labeled_ids=None, uniform_ids=None, folds: int = OOF_FOLDS,
                   random_state=None) -> dict:
    """The model version's evaluation fields: the labeled-set CV accuracy (as before), the estimate on the
    data with its interval, and the stopping signal (single-label projects). The projection is the stats'
    (assay.domain.stats): it follows the target the owner sets.

    ``tests``: prequential_tests; ``history``: the earlier model versions (for the tests' ages);
    ``reference_stop``: store.stop_predictions of the model the stop signal compares with; ``labeled_ids``:
    the items of ``y_labeled`` (to find the audits among them), ``uniform_ids``: those drawn uniformly
    otherwise (:func:`uniform_draws`), which count as audits for the interval. Beside the
    fields, ``labeled_predictions`` (see labeled_predictions), aligned with ``y_labeled``.
    """
    from assay.evaluation import accuracy, stopping

    classes = np.asarray(model.classes_, dtype=object)
    y = np.asarray(y_labeled, dtype=object)
    oof_pred, oof_conf, oof_correct, fold_L, oof_top = out_of_fold_predictions(
        model_spec, fixed_prior(model_params, model), X_labeled, y, folds=folds, random_state=random_state)
    held = np.isfinite(oof_correct)
    per_fold = [float(np.mean(oof_correct[fold_L == k])) for k in range(folds)
                if np.isfinite(oof_correct[fold_L == k]).any()]
    out: dict = {"accuracy": float(np.mean(oof_correct[held])) if held.any() else None,
                 "accuracy_std": float(np.std(per_fold)) if per_fold else None,
                 "accuracy_method": f"{folds}-fold CV on the labeled set"}
    served_at = {v["version"]: v["n_labels"] for v in history}
    age = [len(y) - served_at.get(t["version"], len(y)) for t in tests]
    audit_ids = {t["item_id"] for t in tests if t["audit"]} | set(uniform_ids or ())
    audited = held & (np.isin(labeled_ids, list(audit_ids)) if labeled_ids is not None else False)
    served_top, served_hit = served_guesses(tests, len(classes))
    est = accuracy.estimate(pool_top_N_K, oof_top[held], served_top, [t["correct"] for t in tests],
                            [t["audit"] for t in tests], age, n_labels=len(y), audit_oof_conf_A=oof_top[audited],
                            audit_oof_correct_A=oof_correct[audited], served_hit_M=served_hit,
                            n_classes=len(classes), random_state=random_state)
    evaluation: dict = {"estimate": est.as_dict() if est else None}
    if est is not None:
        out.update(estimate=est.accuracy, estimate_low=est.low, estimate_high=est.high)
    # Always answering the commonest class: its share among the labels and the pool's predictions.
    shares = Counter(str(v) for v in y)
    shares.update(str(classes[i]) for i in np.asarray(pool_pred_N, dtype=int))
    total = sum(shares.values())
    if total:
        top, n_top = shares.most_common(1)[0]
        evaluation["majority"] = {"label": top, "accuracy": n_top / total}
    evaluation.update(_audit_metrics(tests))

    probs_S_C = model.predict_proba(X_stop) if len(stop_ids) else np.zeros((0, len(classes)))
    stop_pred = classes[np.argmax(probs_S_C, axis=1)]
    out["stop_predictions"] = {int(i): str(p) for i, p in zip(stop_ids, stop_pred)}
    kappa = gain = None
    if reference_stop:
        theirs = reference_stop["predictions"]
        common = [k for k, i in enumerate(stop_ids) if i in theirs]
        if common:
            mine = out["stop_predictions"]
            reference = [theirs[stop_ids[k]] for k in common]
            kappa = stopping.cohen_kappa([mine[stop_ids[k]] for k in common], reference)
            gain = stopping.predicted_gain(probs_S_C[common], classes, reference)
    out["kappa"] = kappa
    now = stopping.settled(kappa, gain)
    # Versions from before the gain was recorded count as not settled.
    before = [bool(((v.get("evaluation") or {}).get("stopping") or {}).get("settled")) for v in history
              if v.get("status") == "ok"]
    out["stop_signal"] = int(stopping.stop_signal(before + [now]))
    evaluation["stopping"] = {"threshold": stopping.THRESHOLD, "lag_share": stopping.LAG_SHARE,
                              "predicted_gain": gain, "gain_threshold": stopping.GAIN_THRESHOLD,
                              "kappa_floor": stopping.KAPPA_FLOOR,
                              "settled": now, "rounds": stopping.ROUNDS,
                              "stop_set": len(stop_ids),
                              "reference_version": reference_stop["version"] if reference_stop else None,
                              "reference_labels": reference_stop["n_labels"] if reference_stop else None}

    prior = learned_prior(model)
    if prior is not None:
        evaluation["prior"] = {"l2": prior}  # the next retrain's l2_previous
    if getattr(model, "prior_scale_", None) is not None:
        # How much the label names are worth on these labels (issue 28): 0 is the plain prior, 1 the names as is.
        evaluation.setdefault("prior", {})["names_scale"] = round(float(model.prior_scale_), 4)
    out["evaluation"] = evaluation
    out["labeled_predictions"] = labeled_predictions(model, X_labeled, oof_pred, oof_conf)
    return out


def _audit_metrics(tests: list[dict]) -> dict:
    """Macro-F1 and per-class recall from the audits (a uniform sample): where there are enough of them."""
    audits = [t for t in tests if t["audit"]]
    if not audits:
        return {}
    labels = [str(t["label"]) for t in audits]
    predicted = [str(t["predicted"]) for t in audits]
    classes = sorted(set(labels) | set(predicted))
    recall = {}
    f1s = []
    for c in classes:
        tp = sum(1 for a, b in zip(labels, predicted) if a == c and b == c)
        n_true = labels.count(c)
        n_pred = predicted.count(c)
        if n_true:
            recall[c] = {"recall": tp / n_true, "n": n_true}
        f1s.append(2 * tp / (n_true + n_pred) if n_true + n_pred else 0.0)
    return {"audit": {"n": len(audits), "macro_f1": float(np.mean(f1s)), "recall": recall}}

"""A retrain job as the worker process runs it: read the project, fit, acquire, report.

The job only reads the database. It returns a JobResult (the model version
and the new queue); the server's single writer commits it in one transaction,
so a crash anywhere in here leaves the previous model and queue in place.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter

import numpy as np

from assay import store
from assay.models import BUILTIN_MODELS, check_model, make_model
from assay.evaluation import stopping
from . import propensity
from .acquire import K_SAMPLES, can_fit, estimate_accuracy, run_round
from .evaluate import evaluate_round, out_of_fold_predictions, prequential_tests, uniform_draws
from .queueing import AUDIT, audit_flags, draw_audits
from .featcache import STEP, FeatureCache
from .records import Job, JobResult, ModelVersion
from .resolution import labeled_items

log = logging.getLogger(__name__)

# The labeling page offers the model's first guesses as keys 1-5 once a project has too many labels
# for a key each; more guesses per queue row would only weigh on every pull.
TOP_GUESSES = 5
TABLE_UP_TO = 10


# A retrain ranks at least this many pool items, featurizing them first if need be (two featurizing steps:
# about 7 s of MiniLM on one core); the rest of the pool follows in slices between retrains.
MIN_RANKED = 512
# Seconds a retrain goes on featurizing beyond that: a fast featurizer (TF-IDF, tables, images: thousands of
# items a second) does a whole pool of thousands within it; MiniLM (a step takes seconds) stops at MIN_RANKED.
RETRAIN_BUDGET = 0.5
# Seconds of featurizing per slice: a retrain (of this or another project) waits at most about this long
# plus one step (featcache.STEP).
SLICE_SECONDS = 4.0


def run_job(job: Job, progress=None) -> JobResult:
    started = time.perf_counter()
    project_id, settings = job.project_id, job.settings
    db = store.open_readonly(job.db_path)
    try:
        project = store.get_project(db, project_id)
        labeled = labeled_items(db, project_id)
        cache = FeatureCache(job.cache_root, project, media_root=f"{job.media_root}/project-{project_id}",
                             embedding_cache=settings.get("embedding_cache"))
        step = int(settings.get("featurize_step") or STEP)
        if job.kind == "featurize":
            featured = cache.ensure_some(db, progress=progress, step=step,
                                         budget=float(settings.get("featurize_slice", SLICE_SECONDS)))
            last = store.latest_version(db, project_id)
            if not _ranks_anew(featured, last, len(labeled)):
                return JobResult(None, None, featurized=(featured.done, featured.total))
            # Labels that came since the last retrain: featurized now, or this version would fit on fewer.
            featured = cache.ensure_some(db, first=[i for i, _ in labeled], budget=0.0)
        else:
            min_ranked = int(settings.get("min_ranked", MIN_RANKED))
            featured = cache.ensure_some(db, progress=progress, first=[i for i, _ in labeled], step=step,
                                         at_least=len(labeled) + min_ranked, budget=RETRAIN_BUDGET)
        ids, X = featured.ids, featured.X
        pool_ids = np.asarray(store.pool_item_ids(db, project_id), dtype=np.int64)
        evaluating = not project["multi_label"]
        if evaluating:
            tests = prequential_tests(db, project_id, dict(labeled))
            uniform_ids = uniform_draws(db, project_id, [i for i, _ in labeled])
            stop_ids = store.stop_set_ids(db, project_id, stopping.STOP_SET_SIZE)
            reference_stop = store.stop_predictions(db, project_id,
                                                    stopping.reference_labels(len(labeled)))
            history = store.model_versions(db, project_id)
    finally:
        db.close()
    prior = _label_prior(project, cache)
    result = _round(job, project, labeled, ids, X, pool_ids, evaluating, started, progress, prior,
                    **({"tests": tests, "stop_ids": stop_ids, "reference_stop": reference_stop, "history": history,
                        "uniform_ids": uniform_ids} if evaluating else {}))
    return JobResult(result.version, result.queue, result.predictions, featurized=(featured.done, featured.total))


def _label_prior(project: dict, cache):
    """The label names' zero-shot classifier (single-label projects whose featurizer embeds names: MiniLM text, or
    a plug-in with ``embed_label_texts``), or None.
    A failure to embed the names costs the suggestions, never the retrain."""
    if project["multi_label"]:
        return None
    from .zeroshot import label_prior

    try:
        return label_prior(getattr(cache, "fitted", None), project["labels"], project.get("label_descriptions"))
    except Exception:  # noqa: BLE001
        log.warning("project %s: the label names could not be embedded", project["id"], exc_info=True)
        return None


def _ranks_anew(featured, last: dict | None, n_labeled: int) -> bool:
    """Whether a featurizing slice should rank the pool again: once the featurized share of the pool has
    doubled since the last version ranked (so a pool of N items costs about log2(N / MIN_RANKED) extra
    rankings), or is complete while the last version ranked less."""
    if last is None or last["status"] not in ("ok", "cold_start"):
        return True
    ranked = last.get("ranked")
    if ranked is None:
        return False  # ranked the whole pool (a version from before featurizing went in steps)
    share = max(featured.done - n_labeled, 0)
    if featured.complete:
        return ranked < (last.get("pool_size") or 0)
    return share >= 2 * max(int(ranked), 1)


def _round(job: Job, project: dict, labeled, ids, X, pool_ids, evaluating: bool, started: float, progress,
           label_prior=None, tests=None, stop_ids=None, reference_stop=None, history=None,
           uniform_ids=None) -> JobResult:
    settings = job.settings
    row_of = {int(i): r for r, i in enumerate(ids)}
    labeled = [(i, y) for i, y in labeled if i in row_of]
    pool_size = len(pool_ids)
    # The featurized part of the pool: all of it, or while featurizing goes on a uniform random share.
    pool_ids = np.array([i for i in pool_ids if int(i) in row_of], dtype=np.int64)
    share = len(pool_ids) / pool_size if pool_size else 1.0
    X_labeled = X[[row_of[i] for i, _ in labeled]] if labeled else X[:0]
    y_labeled = [y for _, y in labeled]
    X_pool = X[[row_of[int(i)] for i in pool_ids]]
    counts = Counter(v for y in y_labeled for v in (y if isinstance(y, list) else [y]))
    # ModelVersion's fields, gathered as the round goes (_add_accuracy and evaluate_round add theirs); the
    # record is built once they are all known.
    version = {
        "model": project["model"], "strategy": project["strategy"], "n_labels": len(labeled),
        "label_counts": dict(counts), "pool_size": int(pool_size), "ranked": int(len(pool_ids)),
    }
    seed = settings.get("seed")
    if len(pool_ids) == 0:
        # Everything is labeled: no batch to pick, but the model version still gets its accuracy.
        if progress:
            progress("estimating accuracy", 0.0)
        _add_accuracy(version, project, X_labeled, y_labeled, settings, seed)
        predictions = _held_out_predictions(project, labeled, X_labeled, y_labeled, settings, seed)
        version.update(status="ok" if version.get("accuracy") is not None else "cold_start",
                       total_seconds=time.perf_counter() - started)
        # (A pool none of which is featurized yet keeps the queue it has.)
        return JobResult(ModelVersion(**version), [] if pool_size == 0 else None, predictions)
    if progress:
        progress("fitting", 0.0)
    if project["model"] not in BUILTIN_MODELS and len(labeled) >= 2 and not project["multi_label"]:
        # A plug-in model is tried on a small sample first, so a broken one fails with a clear message.
        take = np.random.default_rng(0).permutation(len(labeled))[:min(len(labeled), 50)]
        y_small = np.asarray(y_labeled, dtype=object)[take]
        if len(set(map(str, y_small))) >= 2:
            check_model(make_model(project["model"], **project["model_params"]), X_labeled[take], y_small)
    with _cluster() as cluster:
        result = run_round(
            model_spec=project["model"], model_params=project["model_params"],
            strategy_name=project["strategy"], strategy_params=project["strategy_params"],
            X_labeled=X_labeled, y_labeled=y_labeled, X_pool=X_pool, batch_size=project["batch_size"],
            multi_label=project["multi_label"], label_names=project["labels"], random_state=seed,
            k_samples=int(settings.get("k_samples", K_SAMPLES)), depth=queue_depth(settings, project, len(pool_ids)),
            l2_previous=previous_prior(history, project["model"]) if evaluating else None, cluster=cluster,
            label_prior=label_prior,
        )
    batch_prob = propensity.batch_probability(
        project["strategy"], project["strategy_params"], batch=len(result.indices), pool=len(pool_ids),
        n_labels=len(labeled), n_classes=len(result.classes), multi_label=project["multi_label"],
        cold_start_by=result.cold_start_by if result.cold_start else None, share=share)
    queue = []
    for rank, (idx, score) in enumerate(zip(result.indices, result.scores)):
        row = {"item_id": int(pool_ids[idx]), "score": float(score), "strategy": result.strategy,
               "prediction": None, "selection_prob": batch_prob}
        if result.probs_B_C is not None:
            row["prediction"] = _prediction(result.probs_B_C[rank], result.classes, project["multi_label"])
        queue.append(row)
    for idx, score, probs in zip(result.more_indices, result.more_scores,
                                 result.more_probs if result.more_probs is not None else []):
        queue.append({"item_id": int(pool_ids[idx]), "score": float(score), "strategy": result.more_strategy,
                      "prediction": _prediction(probs, result.classes, project["multi_label"], brief=True)})
    predictions = None
    if result.cold_start:
        version.update(status="cold_start", strategy=result.strategy, acquire_seconds=result.acquire_seconds)
    else:
        if progress:
            progress("estimating accuracy", 0.0)
        if evaluating:
            rng = np.random.default_rng(seed)
            n_audit = sum(t["audit"] for t in tests)
            queue = _with_audits(queue, result, X_pool, pool_ids, len(labeled), n_audit,
                                 float(project.get("audit_share") or 0.0), rng, share)
            stop_ids = [i for i in stop_ids if i in row_of]
            version.update(evaluate_round(
                model=result.model, model_spec=project["model"], model_params=project["model_params"],
                X_labeled=X_labeled, y_labeled=y_labeled, pool_pred_N=result.pool_pred_N,
                pool_top_N_K=result.pool_top_N_K, tests=tests, stop_ids=stop_ids,
                X_stop=X[[row_of[i] for i in stop_ids]], reference_stop=reference_stop, history=history,
                labeled_ids=[i for i, _ in labeled], uniform_ids=uniform_ids, folds=int(settings.get("cv_folds", 5)),
                random_state=int(rng.integers(2**31))))
            predictions = [{"item_id": int(item_id), **p}
                           for (item_id, _), p in zip(labeled, version.pop("labeled_predictions"))]
        else:
            _add_accuracy(version, project, X_labeled, y_labeled, settings, seed, fitted=result.model)
        version.update(status="ok", fit_seconds=result.fit_seconds, acquire_seconds=result.acquire_seconds)
    _beyond_probability(queue, result, batch_prob, len(pool_ids), share)
    version["total_seconds"] = time.perf_counter() - started
    return JobResult(ModelVersion(**version), queue, predictions)


def _cluster():
    """A client on the Dask cluster ``ASSAY_CLUSTER`` names, for the pool's scoring; without it, None."""
    address = os.environ.get("ASSAY_CLUSTER", "").strip()
    if not address:
        return contextlib.nullcontext()
    from .cluster import connect

    return connect(address)


def _held_out_predictions(project: dict, labeled, X_labeled, y_labeled, settings: dict, seed) -> list[dict] | None:
    """With nothing left to acquire (every item labeled, as when a labeled set is imported to find its
    errors), the labeled items' out-of-fold predictions all the same; rows no fold holds out get none."""
    if project["multi_label"] or not can_fit(y_labeled):
        return None
    pred, conf, _, _, _ = out_of_fold_predictions(project["model"], project["model_params"], X_labeled,
                                               np.asarray(y_labeled, dtype=object),
                                               folds=int(settings.get("cv_folds", 5)), random_state=seed)
    return [{"item_id": int(item_id), "label": str(p), "confidence": round(float(c), 4), "held_out": True}
            for (item_id, _), p, c in zip(labeled, pred, conf) if p is not None]


def _beyond_probability(queue: list[dict], result, batch_prob, pool: int, share: float) -> None:
    """The rows beyond the batch (the only ones without a probability yet: the batch's and the audits' have
    theirs) get theirs once the audits took their places: those left of the ranking are drawn from the pool
    outside the batch and the audits."""
    beyond = [row for row in queue if "selection_prob" not in row]
    n_audits = sum(row["strategy"] == AUDIT for row in queue)
    prob = propensity.beyond_probability(result.more_draw, batch_prob, n_more=len(beyond),
                                         pool=pool - n_audits, batch=len(result.indices), share=share)
    for row in beyond:
        row["selection_prob"] = prob


def _with_audits(queue: list[dict], result, X_pool, pool_ids, n_labels: int, n_audit: int, audit_share: float,
                 rng, share: float = 1.0) -> list[dict]:
    """The queue with its audit positions (assay.learning.queueing) taken by items drawn uniformly from
    the pool, each with the model's prediction; the queue keeps its length."""
    flags = audit_flags(n_labels, n_audit, len(queue), audit_share)
    if not flags.any():
        return queue
    # Drawn from the whole pool but the batch: an item the queue ranks further down moves up as an audit
    # (a queue deep enough to rank the whole pool would otherwise leave nothing to draw).
    picks = draw_audits(len(pool_ids), int(flags.sum()), result.indices, rng)
    if not len(picks):
        return queue
    probs = result.model.predict_proba(X_pool[picks])
    prob = propensity.audit_probability(len(picks), len(pool_ids) - len(set(result.indices.tolist())), share)
    audits = [{"item_id": int(pool_ids[i]), "score": None, "strategy": AUDIT,
               "prediction": _prediction(p, result.classes, False), "selection_prob": prob}
              for i, p in zip(picks, probs)]
    audited = {row["item_id"] for row in audits}
    rest = iter([row for row in queue if row["item_id"] not in audited])
    out = []
    for flag in flags:
        row = audits.pop(0) if flag and audits else next(rest, None)
        if row is not None:
            out.append(row)
    return out


def previous_prior(history: list[dict], model_spec: str) -> float | None:
    """The prior the newest fitted model version learned (its evaluation records it), if it was this model's.
    A prior learned on other features is harmless: the fit drops it when it predicts clearly worse there."""
    for version in reversed(history):
        if version.get("status") == "ok":
            if version.get("model") != model_spec:
                return None
            return ((version.get("evaluation") or {}).get("prior") or {}).get("l2")
    return None


def queue_depth(settings: dict, project: dict, pool_size: int) -> int:
    """How many items the queue ranks: far more than a batch, so annotators (a labeling page prefetches
    several) keep getting model-chosen items until the next retrain lands, not random ones."""
    batch = int(project["batch_size"])
    depth = settings.get("queue_depth")
    depth = max(20 * batch, 500) if depth in (None, "") else int(depth)
    return min(max(depth, batch), pool_size)


def _add_accuracy(version: dict, project: dict, X_labeled, y_labeled, settings: dict, seed, fitted=None) -> None:
    params = dict(project["model_params"])
    if getattr(fitted, "l2_method_", None) == "cv" and params.get("l2", "auto") == "auto":
        # The folds reuse the prior the round's fit chose: choosing it again in each of five folds
        # (a cross-validation inside a cross-validation) made the estimate cost ten fits.
        params.update(l2=fitted.l2_, intercept_scaling=fitted.intercept_scaling_)
    acc, acc_std, method = estimate_accuracy(
        project["model"], params, X_labeled,
        y_labeled if project["multi_label"] else np.asarray(y_labeled, dtype=object),
        multi_label=project["multi_label"], label_names=project["labels"],
        folds=int(settings.get("cv_folds", 5)), random_state=seed)
    version.update(accuracy=acc, accuracy_std=acc_std, accuracy_method=method)


def _prediction(probs, classes, multi_label: bool, brief: bool = False) -> dict:
    """The model's prediction as the queue stores it, with ``top``: its first guesses, best first, as
    [label, probability] pairs (the labeling page's suggestion keys when a project has many labels).
    The per-class table rides along only for projects of up to ``TABLE_UP_TO`` labels: at 150 it
    would multiply every queue row and pull by thirty for nothing the page shows. ``brief`` (rows
    beyond the batch, possibly thousands) keeps only what the labeling page shows: no table for
    single-label."""
    probs = np.asarray(probs, dtype=float)
    finite = [i for i in np.argsort(-np.nan_to_num(probs, nan=-np.inf), kind="stable") if np.isfinite(probs[i])]
    top = [[str(classes[i]), round(float(probs[i]), 4)] for i in finite[:TOP_GUESSES]]
    table = len(classes) <= TABLE_UP_TO
    if multi_label:
        present = {str(c): round(float(p), 4) for c, p in zip(classes, probs) if np.isfinite(p)}
        chosen = [c for c, p in present.items() if p >= 0.5]
        if not table:
            keep = set(chosen) | {label for label, _ in top}
            present = {c: p for c, p in present.items() if c in keep}
        return {"labels": chosen, "probs": present, "top": top}
    best = int(np.argmax(probs))
    out = {"label": str(classes[best]), "confidence": round(float(probs[best]), 4), "top": top}
    if not brief and table:
        out["probs"] = {str(c): round(float(p), 4) for c, p in zip(classes, probs)}
    return out

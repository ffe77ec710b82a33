"""A project's progress as numbers: what the stats route and the overview page show."""
from __future__ import annotations

from assay import store
from assay.evaluation.projection import project as project_labels
from assay.features import resolve
from assay.learning.records import ModelVersion

from .labels import label_counts


def project_stats(db, project: dict, service=None) -> dict:
    project_id = project["id"]
    counts = store.counts(db, project_id)
    versions = store.model_versions(db, project_id)
    good = [v for v in versions if v["status"] == "ok"]
    last = versions[-1] if versions else None
    progress = service.progress(project_id) if service is not None else None
    featurizer, notice = resolve(project["item_type"], project.get("featurizer"))
    return {
        "labeled": counts["labeled"],
        "unlabeled": counts["unlabeled"],
        "skipped": counts["skipped"],
        "items": counts["total"],
        "model_version": good[-1]["version"] if good else None,
        "retraining": progress is not None,
        "retrain_progress": progress,
        "strategy": project["strategy"],
        "model": project["model"],
        # The featurizer in use (the project's choice, or the current default), and why, when it is a fallback.
        "featurizer": featurizer,
        "featurizer_notice": notice,
        "label_counts": label_counts(db, project_id),
        "annotators": store.annotator_counts(db, project_id),
        "suggestions": suggestions(db, project_id),
        "last_error": last["error"] if last and last["status"] in ("failed", "timeout") else None,
        "quality": quality(project, good[-1] if good else None, versions),
        "featurized": featurized(db, project_id, counts["total"], versions),
        "ranked": ranked(versions),
        "history": [ModelVersion.from_row(v).public() for v in versions],
    }


def suggestions(db, project_id: int) -> dict:
    """``{"shown", "accepted", "acceptance_rate"}``: labels given with the model's first guess on the page, and
    how many took it (issue 28); the rate is None before any was shown."""
    shown, accepted = store.suggestion_counts(db, project_id)
    return {"shown": shown, "accepted": accepted, "acceptance_rate": round(accepted / shown, 4) if shown else None}


def featurized(db, project_id: int, total: int, versions: list[dict]) -> dict:
    """``{"done", "total"}``: the project's items featurized so far (a retrain ranks that part of the pool)."""
    row = store.featurizing(db, project_id)
    if row is not None:
        return row
    # No job since featurizing went in steps: a project with a version had all its items featurized then.
    return {"done": total if versions else 0, "total": total}


def ranked(versions: list[dict]) -> dict | None:
    """How much of the pool the newest ranking version ranked: ``{"version", "ranked", "pool"}``; ranked is
    below pool while the pool is still being featurized (the ranked part is a uniform random share)."""
    for v in reversed(versions):
        if v["status"] in ("ok", "cold_start"):
            pool = v.get("pool_size")
            return {"version": v["version"], "ranked": v["ranked"] if v.get("ranked") is not None else pool,
                    "pool": pool}
    return None


def quality(project: dict, version: dict | None, versions: list[dict]) -> dict:
    """How good the latest model is, whether to stop, and the labels the target needs: what the project
    page's plot and text say."""
    evaluation = (version or {}).get("evaluation") or {}
    estimate = evaluation.get("estimate")
    return {
        "model_version": version["version"] if version else None,
        "n_labels": version["n_labels"] if version else None,
        "estimate": estimate,
        "majority": evaluation.get("majority"),
        "audit": evaluation.get("audit"),
        "audit_share": project.get("audit_share"),
        "stop": {"signal": bool(version.get("stop_signal")), "kappa": version.get("kappa"),
                 **(evaluation.get("stopping") or {})} if version else None,
        "target_accuracy": project.get("target_accuracy"),
        "projection": _projection(project, versions),
    }


_projections: dict = {}


def _projection(project: dict, versions: list[dict]) -> dict | None:
    """The labels-needed projection for the project's target, from the estimates so far; computed here (the
    owner may change the target any time) and kept while neither the versions nor the target change."""
    target = project.get("target_accuracy")
    points = [(v["n_labels"], v["estimate"], v["estimate_low"], v["estimate_high"]) for v in versions
              if v["status"] == "ok" and v.get("estimate") is not None]
    if target is None or not points:
        return None
    key = (target, tuple(points))
    if key not in _projections:
        if len(_projections) > 256:
            _projections.clear()
        n, est, low, high = zip(*points)
        _projections[key] = project_labels(n, est, low, high, target).as_dict()
    return _projections[key]


def plain_quality(quality: dict | None) -> dict | None:
    """What the project page says first, for someone who is no statistician (issues 27.4, 29.7): the estimate
    as one sentence's numbers, and whether to keep labeling, following the stop signal (and a target the whole
    interval has reached). ``{"accuracy", "low", "high"}`` (percent strings, or None without an estimate),
    ``"stop"`` (bool), ``"headline"`` ("You can stop", "Keep labeling") and ``"advice"`` (why); None before
    there is anything to say."""
    if not quality:
        return None
    estimate, stop, projection = quality.get("estimate"), quality.get("stop") or {}, quality.get("projection") or {}
    if estimate is None and not stop:
        return None
    out: dict = {"accuracy": None, "low": None, "high": None}
    if estimate is not None:
        low, high = estimate["low"], estimate["high"]
        digits = 1 if high - low < 0.04 else 0  # whole percents, unless the range is narrower than that

        def pct(x):
            return f"{100 * x:.{digits}f}%"

        out.update(accuracy=pct(estimate["accuracy"]), low=pct(low), high=pct(high))
    target = projection.get("target")
    if stop.get("signal"):
        stop_now, headline, advice = True, "You can stop", ("the last labels hardly changed the model, and more are "
                                                            "unlikely to improve it much. Check that the accuracy "
                                                            "above is good enough for your use.")
    elif projection.get("status") == "reached" and target is not None:
        stop_now, headline, advice = True, "You can stop", (f"the model meets your target of {100 * target:.1f}%, "
                                                            "even at the low end of its range.")
    elif stop.get("settled"):
        stop_now, headline, advice = False, "Keep labeling for now", ("the model is settling. If the next few "
                                                                      "versions change as little, it is time to stop.")
    elif stop.get("kappa") is not None:
        stop_now, headline, advice = False, "Keep labeling", "the model is still changing with each batch of labels."
    else:
        stop_now, headline, advice = False, "Keep labeling", "it is too early to tell whether more labels still help."
    return {**out, "stop": stop_now, "headline": headline, "advice": advice}

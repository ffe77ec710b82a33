"""HTML pages: the project list, a project's overview, the annotate page, the error page.

Pages only read; every change (create, import, label, undo) goes through the
JSON API from the page's JavaScript, so there is one write path to test.
"""
from __future__ import annotations

from assay import strategies
from flask import Blueprint, Response, current_app, render_template, request

from . import auth, get_db
from assay.domain import projects, settings
from assay import store
from assay.domain.stats import plain_quality, project_stats
from assay.errors import BadRequest

bp = Blueprint("pages", __name__, static_folder="static", static_url_path="/static")

# How the annotate page's buffer behaves; the script reads these from the page.
PREFETCH = {"buffer": 8, "refill_below": 4, "stats_every_ms": 4000}


def _service():
    return current_app.extensions["assay.retrain"]


def _project(project_id: int, action: str = "view") -> dict:
    """The project, if the current user may do ``action`` on it (the same rule the API applies)."""
    auth.require(action, project_id)
    return store.get_project(get_db(), project_id)


@bp.app_context_processor
def _page_globals():
    # Every page (the error page too) knows who is logged in; with accounts on, the
    # scripts send the session's CSRF token with each change they post.
    on = bool(current_app.config.get("AUTH"))
    try:
        user = auth.resolve_user() if on else None
    except Exception:  # a bad Authorization header must not break the error page that reports it
        user = None
    return {"auth_on": on, "page_user": user.name if user is not None and user.via == "session" else None,
            "page_csrf": auth.csrf_token() if on else ""}


@bp.get("/")
def index():
    db = get_db()
    user = auth.current_user()
    rows = []
    for project in store.list_projects(db):
        if not user.may("view", project["id"]):
            continue
        latest = store.latest_version(db, project["id"], status="ok")
        n_items = project["n_items"]
        rows.append({
            "project": project,
            "n_items": n_items,
            "labeled": project["n_labeled"],
            "percent": round(100.0 * project["n_labeled"] / n_items, 1) if n_items else 0.0,
            "model_version": latest["version"] if latest else None,
            "accuracy": latest["accuracy"] if latest else None,
            "retraining": _service().progress(project["id"]) is not None,
        })
    return render_template("index.html", rows=rows, strategies=_strategy_choices(), settings=settings.form_config(),
                           can_create=user.is_admin)


def _strategy_choices() -> list[dict]:
    """Every strategy with its one-line description, the project default first (a newcomer's safe pick)."""
    default = projects.DEFAULTS["strategy"]
    names = [default] + [name for name in strategies.available() if name != default]
    return [{"name": name, "description": strategies.get(name).description, "default": name == default}
            for name in names]


def _live_context(project: dict) -> dict:
    user = auth.current_user()
    stats = project_stats(get_db(), project, _service())
    if not user.may("see_all_labels", project["id"]):
        # As in the stats API: an annotator sees their own count, not other people's.
        stats["annotators"] = {k: v for k, v in stats["annotators"].items() if k == user.name}
    versions = list(reversed(stats["history"]))  # newest first: the one people look for
    items = stats["items"]
    return {"project": project, "stats": stats, "versions": versions, "plain": plain_quality(stats["quality"]),
            "percent": round(100.0 * stats["labeled"] / items, 1) if items else 0.0,
            "can_import": user.may("import", project["id"]), "can_export": user.may("export", project["id"]),
            "can_review": user.may("review", project["id"]), "can_configure": user.may("configure", project["id"])}


@bp.get("/projects/<int:project_id>")
def overview(project_id: int):
    return render_template("overview.html", **_live_context(_project(project_id)))


@bp.get("/projects/<int:project_id>/live")
def overview_live(project_id: int):
    """The overview's changing part (numbers, retrain progress, versions), re-fetched by overview.js."""
    return render_template("_live.html", **_live_context(_project(project_id)))


@bp.get("/projects/<int:project_id>/annotate")
def annotate(project_id: int):
    project = _project(project_id, "annotate")
    user = auth.current_user()
    keys = projects.label_keys(project)
    picker = projects.typeahead(keys)
    if picker:
        keys = [None] * len(keys)  # the number keys pick each item's suggestions, not fixed labels
    typed = settings.ProjectSettings.from_row(project)
    config = {
        "project_id": project["id"],
        "user": user.name,  # the page's unsent answers are kept per user (annotate.js)
        "auth": bool(current_app.config.get("AUTH")),
        "labels": typed.labels,
        "keys": keys,  # one per label; None: click only
        "picker": picker,
        "multi_label": typed.multi_label,
        "item_type": typed.item_type,
        "api": f"/api/projects/{project['id']}",
        "media": f"/projects/{project['id']}/media/",
        "items": store.counts(get_db(), project["id"])["total"],  # 0: "no items yet", not "all labeled"
        "reopen": _reopen_id(),  # ?item=<id>: shown first, with the label it has (the project page's search)
        **PREFETCH,
    }
    return render_template("annotate.html", project=project, config=config, keys=keys, picker=picker,
                           keys_hint=projects.keys_hint(keys), can_import=user.may("import", project["id"]),
                           can_configure=user.may("configure", project["id"]))


def _reopen_id() -> int | None:
    raw = request.args.get("item", "")
    if raw == "":
        return None
    if not raw.isdigit() or not 0 < int(raw) <= settings.SQLITE_MAX:
        raise BadRequest(f"item must be an item's id (a positive integer), not {raw[:40]!r}")
    return int(raw)


@bp.get("/projects/<int:project_id>/review")
def review(project_id: int):
    """Agreement numbers and the items annotators disagree on, each with buttons to pick the final label."""
    from assay.domain import reviewing

    project = _project(project_id, "review")
    db = get_db()
    summary = reviewing.summary(db, project)
    rows = reviewing.disputed(db, project, summary["disagreement_items"][:200])
    return render_template("review.html", project=project, summary=summary, rows=rows,
                           api=f"/api/projects/{project_id}")


@bp.get("/projects/<int:project_id>/learning-curve.png")
def learning_curve(project_id: int):
    from assay.plots import project_curve

    project = _project(project_id)
    history = store.model_versions(get_db(), project["id"])
    png = project_curve(history, target=project.get("target_accuracy"))
    # ?v=<number of versions> names one state of the history, which never changes once written.
    cache = "max-age=3600" if request.args.get("v") == str(len(history)) else "no-cache"
    return Response(png, mimetype="image/png", headers={"Cache-Control": cache})


def error_page(status: int, message: str):
    """The HTML error page for non-API paths (the app's error handlers call this)."""
    return render_template("error.html", status=status, message=message), status

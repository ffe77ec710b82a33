"""Project settings: validation shared by the API, the CLI and the pages."""
from __future__ import annotations

from assay import plugins, store
from assay.errors import BadRequest

from .labels import label_counts
from .settings import SQLITE_MAX, defaults, settings

DEFAULTS = defaults()
# Single characters the annotate page binds itself (annotate.js: s skips; Enter, Backspace and
# Ctrl+Z are not single characters), so no label may have them.
RESERVED_KEYS = ("s",)
NUMBER_ROW = "1234567890"  # the default keys, in label order, as on a keyboard


def _positive_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be an integer between {low} and {high}, got {value!r}")
    return value


def _number(name, value, s):
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not ((s.low < value < s.high) if s.exclusive else (s.low <= value <= s.high)):
        span = f"between {s.low} and {s.high}" if s.exclusive else f"from {s.low} to {s.high}"
        raise BadRequest(f"{name} must be a number {span}{s.explain}{', or null' if s.nullable else ''}, "
                         f"got {value!r}")
    return float(value)


def _check_simple(name, value, s):
    """A setting checked by its metadata alone; the normalized value."""
    if s.kind == "boolean" and not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    if s.kind == "choice" and value not in s.choices:
        raise BadRequest(f"{name} must be one of {list(s.choices)}, got {value!r}")
    if s.kind == "integer":
        return _positive_int(name, value, low=s.low, high=s.high)
    if s.kind == "number":
        return _number(name, value, s)
    if s.kind == "object" and not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object")
    return value


def validate(fields: dict, *, partial: bool = False) -> dict:
    """Checked and normalized project fields; BadRequest says what is wrong and how to fix it."""
    spec = settings()
    known = set(spec)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise BadRequest(f"unknown project field(s) {unknown}; known fields: {sorted(known)}")
    out = {} if partial else dict(DEFAULTS)
    out.update(fields)
    if "name" in out or not partial:
        name = out.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > spec["name"].high:
            raise BadRequest(f"name must be a non-empty string of at most {spec['name'].high} characters")
        if name.strip().isdigit():
            raise BadRequest("name must not be a number (numbers refer to project ids)")
        out["name"] = name.strip()
    if "labels" in out or not partial:
        labels = out.get("labels")
        if isinstance(labels, str):
            labels = [part.strip() for part in labels.split(",")]
        if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
            raise BadRequest("labels must be a list of non-empty strings, e.g. [\"ham\", \"spam\"]")
        labels = [x.strip() for x in labels]
        if len(set(labels)) != len(labels):
            raise BadRequest(f"labels must be distinct, got {labels}")
        most = spec["labels"].high
        if not (1 if out.get("multi_label") else 2) <= len(labels) <= most:
            raise BadRequest(f"a project needs 2 to {most} labels (1 is allowed for multi-label)")
        out["labels"] = labels
    # The params objects go last: the strategy's check below takes strategy_params.
    simple = [name for name, s in spec.items() if s.kind in ("boolean", "choice", "integer", "number")]
    simple += [name for name, s in spec.items() if s.kind == "object"]
    for key in simple:
        if key in out and not (spec[key].nullable and out[key] is None):
            out[key] = _check_simple(key, out[key], spec[key])
    if "strategy" in out:
        from assay import strategies  # here: numpy and scipy, which only a change of settings needs

        if out["strategy"] not in strategies.available():
            raise BadRequest(f"unknown strategy {out['strategy']!r}; available: {', '.join(strategies.available())}")
        try:
            strategies.get(out["strategy"], **out.get("strategy_params", {}))
        except strategies.StrategyInputError as exc:
            raise BadRequest(str(exc)) from None
    if out.get("featurizer") is not None:
        _check_featurizer(out.get("item_type", "text"), out["featurizer"])
    if out.get("label_descriptions") is not None:
        out["label_descriptions"] = _check_descriptions(out["label_descriptions"], out.get("labels"))
    if out.get("keys") is not None:
        out["keys"] = _check_keys(out["keys"])
        if "labels" in out:
            check_keys_fit(out["keys"], out["labels"])
    return out


def _check_descriptions(descriptions, labels) -> dict:
    """{label: one line of text}: what each label means, for the zero-shot suggestions (issue 28)."""
    if not isinstance(descriptions, dict):
        raise BadRequest("label_descriptions must be an object {label: one-line description}")
    out = {}
    for label, text in descriptions.items():
        if not isinstance(text, str) or "\n" in text or len(text.strip()) > 200:
            raise BadRequest(f"label_descriptions[{label!r}] must be one line of at most 200 characters")
        if labels is not None and label not in labels:
            raise BadRequest(f"label_descriptions names {label!r}, which is not one of the labels")
        if text.strip():
            out[str(label)] = text.strip()
    return out


def _check_keys(keys) -> list[str]:
    if not isinstance(keys, list):
        raise BadRequest("keys must be a list of single characters, one per label in the labels' order, "
                         "e.g. [\"j\", \"k\"], or null for the default keys")
    for key in keys:
        if not isinstance(key, str) or len(key) != 1 or not key.isprintable() or key.isspace():
            raise BadRequest(f"keys must be single characters (a letter, a digit or a sign, not a space), got {key!r}")
    folded = [key.lower() for key in keys]
    if len(set(folded)) != len(folded):
        raise BadRequest(f"keys must be distinct, a letter in either case counting once, got {keys}")
    taken = sorted(set(folded) & set(RESERVED_KEYS))
    if taken:
        raise BadRequest(f"key {taken[0]!r} is taken: the annotate page skips an item with it; pick another key")
    return keys


def check_keys_fit(keys, labels) -> None:
    if keys is not None and len(keys) != len(labels):
        raise BadRequest(f"keys has {len(keys)} entries but the project has {len(labels)} labels: give one key per "
                         "label, in the labels' order (send keys with the labels), or keys: null for the default keys")


def label_keys(project: dict) -> list[str | None]:
    """The key that picks each label on the annotate page; None where only a click does.

    The project's own ``keys`` win. Otherwise labels that are single letters or digits are their
    own keys (in a digits project 1 picks "1"), unless two differ only in case or one is a key the
    page keeps; else the number row picks the first ten labels in order.
    """
    labels = project["labels"]
    if project.get("keys"):
        return list(project["keys"])
    folded = [label.lower() for label in labels]
    if (all(len(label) == 1 and (label.isalpha() or label.isdigit()) for label in labels)
            and len(set(folded)) == len(folded) and not set(folded) & set(RESERVED_KEYS)):
        return list(labels)
    return [NUMBER_ROW[i] if i < len(NUMBER_ROW) else None for i in range(len(labels))]


def typeahead(keys: list[str | None]) -> bool:
    """Whether the annotate page picks labels by typing: some label has no key of its own (more labels
    than the number row holds), so the number keys become the model's suggestions for each item and
    letters narrow the labels instead."""
    return None in keys


def keys_hint(keys: list[str | None]) -> str:
    """The keys as the page's hint names them: "1–3", "1–9 and 0", "0–9", "a–e", or "j, k"."""
    present = [key for key in keys if key is not None]
    run = "".join(present).lower()
    if run == NUMBER_ROW:
        return "1–9 and 0"
    if len(present) >= 3 and any(run in row for row in (NUMBER_ROW, "0123456789", "abcdefghijklmnopqrstuvwxyz")):
        return f"{present[0]}–{present[-1]}"
    return ", ".join(present)


def _check_featurizer(item_type: str, name) -> None:
    from assay.features import FeaturizerError, make_featurizer

    if not isinstance(name, str) or not name.strip():
        raise BadRequest("featurizer must be a non-empty string, or null for the item type's default")
    # Refused now, not at the first retrain: an unknown name, or minilm without its package
    # (make_featurizer raises MissingExtraError, a FeaturizerError, with the install hint).
    try:
        make_featurizer(item_type, name)
    except FeaturizerError as exc:
        raise BadRequest(str(exc)) from None


def check_model_serves(fields: dict) -> None:
    """Refuse, at configuration time, a strategy the model cannot serve."""
    from assay import strategies
    from assay.models import ModelError, make_model, missing_for

    spec = fields["model"]
    try:
        model = make_model(spec, **fields.get("model_params", {}))
    except ModelError as exc:
        raise BadRequest(str(exc)) from None
    try:
        strategy = strategies.get(fields["strategy"], **fields.get("strategy_params", {}))
    except strategies.StrategyInputError as exc:
        raise BadRequest(str(exc)) from None
    missing = missing_for(strategy, model)
    if missing:
        raise BadRequest(
            f"model {spec!r} cannot serve strategy {strategy.name!r}: it lacks {', '.join(sorted(missing))}; "
            "pick another strategy (e.g. margin or entropy need only predict_proba) or another model"
        )
    if fields.get("multi_label") and not strategy.multi_label:
        raise BadRequest(f"strategy {strategy.name!r} works on single-label projects only; "
                         "for multi-label use e.g. power_entropy, margin, bald or random")


def create(db, fields: dict, policy: plugins.LoadPolicy = plugins.OPERATOR) -> int:
    """A new project's id. ``policy`` says which import paths it may name (any, by default: the CLI)."""
    if not isinstance(fields, dict):
        raise BadRequest("project fields must be a JSON object")
    plugins.check_fields(fields, policy)
    fields = validate(fields)
    check_model_serves(fields)
    return store.create_project(db, fields)


def update(db, project: dict, fields: dict, policy: plugins.LoadPolicy = plugins.OPERATOR) -> dict:
    plugins.check_fields(fields, policy, project)
    fields = validate(fields, partial=True)
    merged = {**project, **fields}
    if {"labels", "keys"} & set(fields):
        check_keys_fit(merged.get("keys"), merged["labels"])
    if {"strategy", "model", "strategy_params", "model_params", "multi_label"} & set(fields):
        check_model_serves(merged)
    if "labels" in fields and fields["labels"] != project["labels"]:
        used = set(label_counts(db, project["id"]))
        dropped = used - set(fields["labels"])
        if dropped:
            raise BadRequest(f"labels {sorted(dropped)} are in use and cannot be removed")
    unless_items = None
    if "item_type" in fields and fields["item_type"] != project["item_type"]:
        # Items were checked as their type when imported (an image's path must name a file in the media store);
        # switching a text project to images would show unchecked paths to annotators' browsers.
        unless_items = (f"item_type cannot change from {project['item_type']!r} to {fields['item_type']!r} while the "
                        "project has items (or an import is running): they were checked as "
                        f"{project['item_type']} items. Create a new {fields['item_type']} project and import "
                        "them there")
    store.update_project(db, project["id"], fields, unless_items=unless_items)
    return store.get_project(db, project["id"])


def delete(db, project: dict, *, cache_root: str, media_root: str) -> dict:
    """Delete a project and everything of it: rows, cached features and stored images."""
    import shutil

    from assay.learning import featcache

    from .ingest import project_dir

    gone = store.delete_project(db, project["id"])
    featcache.drop(cache_root, project["id"])
    shutil.rmtree(project_dir(media_root, project["id"]), ignore_errors=True)
    return {"deleted": project["name"], "items": gone["total"], "labeled": gone["labeled"]}


def delete_items(db, project: dict, item_ids, *, with_labels: bool, cache_root: str) -> dict:
    """Delete some items of a project: all or none; labeled ones only when asked."""
    from assay.learning import featcache

    if not isinstance(item_ids, list) or not item_ids or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i <= SQLITE_MAX for i in item_ids):
        raise BadRequest("ids must be a non-empty list of item ids (the \"id\" the queue and export give)")
    if not isinstance(with_labels, bool):
        raise BadRequest("with_labels must be true or false")
    out = store.delete_items(db, project["id"], item_ids, with_labels=with_labels)
    featcache.invalidate(cache_root, project["id"])
    return out


def public(project: dict, db) -> dict:
    """A project as the API shows it."""
    counts = store.counts(db, project["id"])
    out = {k: project[k] for k in ("id", "name", "labels", "multi_label", "item_type", "strategy", "strategy_params",
                                   "model", "model_params", "batch_size", "retrain_every", "overlap", "audit_share",
                                   "target_accuracy", "created_at")}
    out["featurizer"] = project.get("featurizer")
    out["keys"] = project.get("keys")
    out["label_descriptions"] = project.get("label_descriptions")
    out["items"] = counts["total"]
    out["labeled"] = counts["labeled"]
    return out

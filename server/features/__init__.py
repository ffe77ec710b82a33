"""Featurizers: item ``data`` dicts to float32 feature matrices.

Every featurizer has ``fit(items)`` (returns self) and ``transform(items)``
(float32 ``(N, D)``, D fixed by the fit), where items are lists of the
``data`` dicts stored with each item. A fitted featurizer pickles
(:func:`dumps` / :func:`loads`), so the server can featurize each item once and
keep the features across retrains.

=========  ==================  ==================================================
item type  name                featurizer
=========  ==================  ==================================================
text       ``tfidf`` (default) :class:`TfidfSVD`: TF-IDF uni+bigrams, SVD, L2 rows
text       ``minilm``          :class:`SentenceEmbedding` (``pip install 'assay[embeddings]'``)
image      ``pixels`` (default) :class:`ImageFeaturizer`: resized, standardized pixels
tabular    ``columns`` (default) :class:`TabularFeaturizer`: standardized numbers, one-hot categories
=========  ==================  ==================================================

A name ``package.module:factory`` loads a custom featurizer: ``factory(**params)``
must return an object with ``fit`` and ``transform`` as above. So does the name
of an entry point in the group ``assay.featurizers``. Over HTTP only registered
import paths are accepted (see :mod:`server.plugins`).
"""
from __future__ import annotations

import importlib
import importlib.metadata

from .base import Featurizer, FeaturizerError, MissingExtraError, dumps, loads
from .image import ImageFeaturizer
from .tabular import TabularFeaturizer
from .text import EMBEDDINGS_HINT, SentenceEmbedding, TfidfSVD, embeddings_available

FEATURIZERS = {
    "text": {"tfidf": TfidfSVD, "minilm": SentenceEmbedding},
    "image": {"pixels": ImageFeaturizer},
    "tabular": {"columns": TabularFeaturizer},
}
DEFAULTS = {"text": "tfidf", "image": "pixels", "tabular": "columns"}
ENTRY_POINT_GROUP = "assay.featurizers"
ALIASES = {"tfidf_svd": "tfidf", "lsa": "tfidf", "sentence": "minilm", "all-minilm-l6-v2": "minilm"}


def make_featurizer(item_type: str, name: str | None = None, **params):
    """An unfitted featurizer for ``item_type`` ("text", "image", "tabular")."""
    if item_type not in FEATURIZERS:
        raise FeaturizerError(f"unknown item type {item_type!r}; expected one of {sorted(FEATURIZERS)}")
    if name and ":" in name:
        factory = _load_factory(name)
        origin = f"featurizer {name!r}"
    else:
        key = ALIASES.get(name, name) if name else DEFAULTS[item_type]
        factory = FEATURIZERS[item_type].get(key) or _load_entry_point(key)
        if factory is None:
            raise FeaturizerError(f"unknown {item_type} featurizer {name!r}; choose one of "
                                  f"{sorted(FEATURIZERS[item_type])}, an entry point in the group "
                                  f"{ENTRY_POINT_GROUP!r}, or 'package.module:factory'")
        if factory is SentenceEmbedding and not embeddings_available():
            raise MissingExtraError(EMBEDDINGS_HINT)
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
    "FEATURIZERS", "Featurizer", "FeaturizerError", "ImageFeaturizer", "MissingExtraError", "SentenceEmbedding",
    "TabularFeaturizer", "TfidfSVD", "dumps", "embeddings_available", "loads", "make_featurizer",
]

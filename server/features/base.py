"""What every featurizer shares: the error type and pickled persistence."""
from __future__ import annotations

import pickle

import numpy as np


class FeaturizerError(ValueError):
    """Items a featurizer cannot turn into features, or a featurizer that cannot be built."""


class MissingExtraError(FeaturizerError, ImportError):
    """An optional featurizer whose package is not installed."""


class Featurizer:
    """Base class: ``fit(items)`` learns from a list of item ``data`` dicts,
    ``transform(items)`` returns float32 ``(N, D)`` with D fixed by the fit."""

    def fit(self, items):
        raise NotImplementedError

    def transform(self, items) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, items) -> np.ndarray:
        return self.fit(items).transform(items)

    def _check_fitted(self):
        if not getattr(self, "fitted_", False):
            raise FeaturizerError(f"{type(self).__name__} is not fitted: call fit(items) first")


def field_values(items, field: str, what: str) -> list:
    """``item[field]`` for each item, refusing items that are not dicts or lack the field."""
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FeaturizerError(f"item {i} is a {type(item).__name__}, not a dict of item data")
        if field not in item:
            raise FeaturizerError(f"item {i} has no {field!r} field ({what}); its fields are {sorted(item)}")
        out.append(item[field])
    return out


def dumps(featurizer) -> bytes:
    """A fitted featurizer as bytes, to store next to the features it made."""
    return pickle.dumps(featurizer, protocol=pickle.HIGHEST_PROTOCOL)


def loads(blob: bytes):
    """The featurizer :func:`dumps` stored. Only load bytes this server wrote: pickle runs code."""
    return pickle.loads(blob)

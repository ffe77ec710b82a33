"""Tabular featurizer: row dicts to standardized numbers and one-hot categories."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .base import Featurizer, FeaturizerError

# Compared after strip() and lower(). "?" is how UCI files mark missing values.
MISSING_STRINGS = frozenset({"", "?", "na", "n/a", "nan", "null"})


def is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_STRINGS


def as_number(value):
    """The value as a float, or None when it is not a number (bools count as 0/1)."""
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _category(value) -> str:
    return value.strip() if isinstance(value, str) else str(value)


class TabularFeaturizer(Featurizer):
    """Each item's ``data`` is one row: ``{column: value}``.

    Column types are inferred at fit: a column is numeric when every
    non-missing value parses as a number (so CSV strings like "39" count),
    otherwise categorical. Missing values are None, NaN, or the strings
    "", "?", "NA", "N/A", "nan", "null" (any case, surrounding spaces ignored).

    * numeric: median-imputed, then standardized; a 0/1 "is missing" column is
      added for each column that had missing values at fit.
    * categorical: missing values take the most frequent category, then one-hot
      over the ``max_categories`` most frequent categories; unseen or rarer
      categories get all zeros.

    Columns missing in every fitted row are dropped.

    Parameters
    ----------
    columns : the feature columns, in order (default: every key seen at fit, in
        first-seen order, less ``exclude``). Leave out id and label columns.
    exclude : columns never used as features.
    max_categories : one-hot width cap per categorical column.
    """

    def __init__(self, columns=None, exclude=(), max_categories=50):
        self.columns = columns
        self.exclude = exclude
        self.max_categories = max_categories

    @staticmethod
    def _rows(items):
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise FeaturizerError(f"item {i} is a {type(item).__name__}, not a dict of column values")
        return items

    def fit(self, items):
        rows = self._rows(items)
        if not rows:
            raise FeaturizerError("cannot fit a tabular featurizer on no rows")
        if self.columns is None:
            seen = dict.fromkeys(key for row in rows for key in row)
            columns = [c for c in seen if c not in set(self.exclude)]
        else:
            columns = list(self.columns)
            absent = [c for c in columns if not any(c in row for row in rows)]
            if absent:
                raise FeaturizerError(f"columns {absent} are in no row; the rows have "
                                      f"{sorted({k for row in rows for k in row})}")
        self.numeric_ = {}  # column -> (median, mean, scale, add_indicator)
        self.categorical_ = {}  # column -> (fill value, categories)
        for column in columns:
            values = [row.get(column) for row in rows]
            present = [v for v in values if not is_missing(v)]
            if not present:
                continue
            numbers = [as_number(v) for v in present]
            if all(n is not None for n in numbers):
                arr = np.asarray(numbers, dtype=np.float64)
                median = float(np.median(arr))
                filled = np.concatenate([arr, np.full(len(values) - len(arr), median)])
                std = float(filled.std())
                self.numeric_[column] = (median, float(filled.mean()), std if std > 1e-12 else 1.0,
                                         len(present) < len(values))
            else:
                counts = Counter(_category(v) for v in present)
                ranked = sorted(counts, key=lambda c: (-counts[c], c))
                self.categorical_[column] = (ranked[0], ranked[:int(self.max_categories)])
        if not self.numeric_ and not self.categorical_:
            raise FeaturizerError(f"no usable feature column: every value of {columns} is missing")
        self.columns_ = [c for c in columns if c in self.numeric_ or c in self.categorical_]
        self.feature_names_out_ = self._feature_names()
        self.n_features_out_ = len(self.feature_names_out_)
        self.fitted_ = True
        return self

    def _feature_names(self) -> list[str]:
        names = []
        for column in self.columns_:
            if column in self.numeric_:
                names.append(str(column))
                if self.numeric_[column][3]:
                    names.append(f"{column}_missing")
            else:
                names.extend(f"{column}={category}" for category in self.categorical_[column][1])
        return names

    def transform(self, items) -> np.ndarray:
        self._check_fitted()
        rows = self._rows(items)
        blocks = []
        for column in self.columns_:
            values = [row.get(column) for row in rows]
            if column in self.numeric_:
                median, mean, scale, add_indicator = self.numeric_[column]
                numbers = [None if is_missing(v) else as_number(v) for v in values]
                missing = np.array([n is None for n in numbers], dtype=bool)
                arr = np.array([median if n is None else n for n in numbers], dtype=np.float64).reshape(-1, 1)
                blocks.append((arr - mean) / scale)
                if add_indicator:
                    blocks.append(missing.reshape(-1, 1).astype(np.float64))
            else:
                fill, categories = self.categorical_[column]
                index = {c: j for j, c in enumerate(categories)}
                onehot = np.zeros((len(values), len(categories)))
                cols = [index.get(fill if is_missing(v) else _category(v), -1) for v in values]
                hit = np.flatnonzero(np.asarray(cols) >= 0) if values else np.zeros(0, dtype=int)
                onehot[hit, np.asarray(cols)[hit]] = 1.0
                blocks.append(onehot)
        if not rows:
            return np.zeros((0, self.n_features_out_), dtype=np.float32)
        return np.hstack(blocks).astype(np.float32)

"""Data sets for the simulator: item ``data`` dicts (what the server stores per item) plus their labels.

Files are read with the server's own import parser (``assay.domain.ingest``), so a
file that imports into a project simulates the same way. Sources:

* a CSV, TSV or JSONL file (format from the extension, else sniffed);
* a folder of images with one table file (CSV/TSV/JSONL) naming each image and its label;
* ``sklearn:digits`` (written once as 8x8 PNGs, so the image featurizer reads real files),
  ``sklearn:iris``, ``sklearn:wine``, ``sklearn:breast_cancer`` (tabular).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from assay.domain import ingest
from assay.errors import AssayError

TABLE_EXTENSIONS = (".csv", ".tsv", ".tab", ".txt", ".jsonl", ".ndjson", ".json")
SKLEARN_TABULAR = ("iris", "wine", "breast_cancer")
DIGITS_SIZE = (8, 8)


class DataError(ValueError):
    """A data set that cannot be loaded as asked; the message says what to change."""


@dataclass
class Dataset:
    name: str
    item_type: str  # "text", "image" or "tabular", as a project's item_type
    items: list[dict]
    labels: np.ndarray  # (N,) object array of label strings
    # Defaults for make_featurizer that this source needs (an image root, the digits' 8x8 size).
    featurizer_params: dict = field(default_factory=dict)
    dropped: int = 0  # rows without a label
    # Items from here on are a fixed test set (``--test-data``), never in the pool; None: split per seed.
    test_start: int | None = None

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.tolist()))


def default_cache_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "assay-simulate")


def _split_columns(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [c.strip() for c in value if c and c.strip()]


def _label_of(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def read_table(path: str, fmt: str | None = None) -> list[dict]:
    """The rows of a CSV/TSV/JSONL/JSON file as dicts, parsed as ``assay import`` parses them."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    fmt = fmt or ingest.guess_format(os.path.basename(path), raw[:65536])
    try:
        return ingest.parse_records(raw, fmt)
    except AssayError as exc:
        raise DataError(f"{path}: {exc.message}") from None


def _find_table(folder: str) -> str:
    tables = sorted(f for f in os.listdir(folder)
                    if f.lower().endswith(TABLE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))
    if len(tables) != 1:
        found = ", ".join(tables) if tables else "none"
        raise DataError(f"an image folder needs exactly one labels file (CSV/TSV/JSONL) at its top level "
                        f"naming each image and its label; found {found}. Pass that file as DATA instead "
                        f"(with --image-column) to choose one")
    return os.path.join(folder, tables[0])


def load_dataset(source: str, *, label_column: str = "label", text_column=None, image_column=None,
                 feature_columns=None, exclude_columns=None, fmt: str | None = None,
                 cache_dir: str | None = None, min_classes: int = 2) -> Dataset:
    """Items and labels from ``source`` (see the module docstring).

    The item type is image when ``image_column`` is given or ``source`` is a
    folder, text when ``text_column`` is (several comma-separated columns are
    joined, e.g. a title and a description), tabular otherwise: each item is
    its row restricted to ``feature_columns`` (default: every column except the
    label and ``exclude_columns``). A training set needs two classes; a test set
    (``min_classes=1``) may hold one.
    """
    if source.startswith("sklearn:"):
        return _load_sklearn(source.partition(":")[2], cache_dir or default_cache_dir())
    if os.path.isdir(source):
        table = _find_table(source)
        return _from_records(read_table(table, fmt), os.path.basename(os.path.normpath(source)), label_column,
                             text_column, image_column or "image", feature_columns, exclude_columns,
                             image_root=os.path.abspath(source), min_classes=min_classes)
    if not os.path.isfile(source):
        raise DataError(f"no such file or folder: {source} (or name a bundled set: sklearn:digits, "
                        f"{', '.join('sklearn:' + n for n in SKLEARN_TABULAR)})")
    # Parent folder too: "ag_news/test.csv" says more than "test.csv" in titles and tables.
    name = os.path.join(os.path.basename(os.path.dirname(os.path.abspath(source))), os.path.basename(source))
    return _from_records(read_table(source, fmt), name, label_column, text_column,
                         image_column, feature_columns, exclude_columns,
                         image_root=os.path.dirname(os.path.abspath(source)), min_classes=min_classes)


def _from_records(records, name, label_column, text_column, image_column, feature_columns, exclude_columns,
                  image_root, min_classes: int = 2) -> Dataset:
    if not records:
        raise DataError(f"{name} has no rows")
    columns = list(dict.fromkeys(key for row in records[:1000] for key in row))
    text_columns = _split_columns(text_column)
    wanted = [label_column] + text_columns + ([image_column] if image_column else [])
    wanted += _split_columns(feature_columns)
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise DataError(f"{name} has no column {', '.join(repr(c) for c in absent)}; its columns are {columns}")

    if image_column:
        item_type = "image"
        make_item = lambda row: {"image": str(row.get(image_column) or "").strip()}  # noqa: E731
        params = {"root": image_root}
    elif text_columns:
        item_type = "text"
        make_item = lambda row: {"text": "\n".join(  # noqa: E731
            str(row[c]) for c in text_columns if row.get(c) not in (None, ""))}
        params = {}
    else:
        item_type = "tabular"
        chosen = _split_columns(feature_columns) or [
            c for c in columns if c != label_column and c not in set(_split_columns(exclude_columns))]
        if not chosen:
            raise DataError(f"{name}: no feature columns left besides the label {label_column!r}")
        make_item = lambda row: {c: row.get(c) for c in chosen}  # noqa: E731
        params = {}

    items, labels = [], []
    for row in records:
        label = _label_of(row.get(label_column))
        if label is None:
            continue
        items.append(make_item(row))
        labels.append(label)
    dropped = len(records) - len(items)
    if len(set(labels)) < min_classes:
        raise DataError(f"{name}: the label column {label_column!r} has {len(set(labels))} distinct value(s); "
                        "a classifier needs at least two")
    return Dataset(name, item_type, items, np.asarray(labels, dtype=object), params, dropped)


def _load_sklearn(name: str, cache_dir: str) -> Dataset:
    import sklearn.datasets

    if name == "digits":
        return _digits(cache_dir)
    if name in SKLEARN_TABULAR:
        bunch = getattr(sklearn.datasets, f"load_{name}")()
        names = [str(n) for n in bunch.feature_names]
        items = [dict(zip(names, map(float, row))) for row in bunch.data]
        labels = np.asarray([str(bunch.target_names[t]) for t in bunch.target], dtype=object)
        return Dataset(f"sklearn:{name}", "tabular", items, labels)
    raise DataError(f"unknown data set sklearn:{name}; bundled ones: sklearn:digits, "
                    f"{', '.join('sklearn:' + n for n in SKLEARN_TABULAR)}")


def _digits(cache_dir: str) -> Dataset:
    """The 1,797 8x8 digits as grey PNG files, written once under ``cache_dir``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    folder = os.path.join(cache_dir, "sklearn-digits")
    done = os.path.join(folder, "COMPLETE")
    names = [f"digit-{i:04d}.png" for i in range(len(bunch.images))]
    if not os.path.exists(done):
        os.makedirs(folder, exist_ok=True)
        # Pixel values are 0..16; scale to the full 8-bit range.
        pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
        for name, image in zip(names, pixels):
            Image.fromarray(image).save(os.path.join(folder, name))
        with open(done, "w") as fh:
            fh.write(f"{len(names)}\n")
    items = [{"image": name} for name in names]
    labels = np.asarray([str(t) for t in bunch.target], dtype=object)
    return Dataset("sklearn:digits", "image", items, labels, {"root": folder, "size": DIGITS_SIZE})


def with_test_set(train: Dataset, test: Dataset) -> Dataset:
    """One data set whose items after the training file's are its fixed test set.

    The test file must hold the same kind of items; labels it has that the training file lacks
    are kept (a model can only get those wrong, as in deployment).
    """
    if train.test_start is not None or test.test_start is not None:
        raise DataError("a data set can have one test set")
    if test.item_type != train.item_type:
        raise DataError(f"the test data holds {test.item_type} items, the training data {train.item_type} items")
    if test.featurizer_params != train.featurizer_params:
        raise DataError("the test data must sit in the same folder as the training data (image paths are "
                        "relative to it)")
    return Dataset(train.name, train.item_type, train.items + test.items,
                   np.concatenate([train.labels, test.labels]), dict(train.featurizer_params),
                   dropped=train.dropped + test.dropped, test_start=len(train.items))

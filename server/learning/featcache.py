"""Per-project feature cache on disk, so a retrain never featurizes an item twice.

Files live in ``instance/cache/project-<id>/``: the fitted featurizer (pickle), the main
matrix (``features.npz``: item ids and float32 rows) and the steps featurized since it was
last merged (``part-NNNNNN.npz``), each written atomically. Only the retrain worker writes
them, one job at a time, so no locking is needed.

Featurizing goes in steps, so a retrain never waits for the whole pool: a job asks for the
items it needs first (the labeled ones) and for enough of the rest, taken in the import-time
shuffle's order; whatever is featurized is a uniform random sample of the project.

Text embeddings are also kept per text, by content hash, in a cache shared by
every project (:mod:`assay.learning.embcache`): re-featurizing costs lookups.
"""
from __future__ import annotations

import inspect
import logging
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from assay import store
from . import embcache
from assay.features import make_featurizer, resolve

log = logging.getLogger(__name__)

# Refit the featurizer (vocabulary, SVD) when the pool has grown this much since the fit.
REFIT_GROWTH = 0.5


def _atomic_write(path: str, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def project_cache_dir(cache_root: str, project_id: int) -> str:
    return os.path.join(cache_root, f"project-{project_id}")


def drop(cache_root: str, project_id: int) -> None:
    """Forget a deleted project's features."""
    shutil.rmtree(project_cache_dir(cache_root, project_id), ignore_errors=True)


def invalidate(cache_root: str, project_id: int) -> None:
    """Make the next retrain featurize every item afresh.

    After items are deleted, SQLite may give a deleted item's id to a new one,
    and the cache would take the old features for it.
    """
    try:
        os.remove(os.path.join(project_cache_dir(cache_root, project_id), "featurizer.pkl"))
    except FileNotFoundError:
        pass


# Items featurized per step: each step is committed to the cache as a part file before the next starts, so a
# job stopped (or a worker killed) mid-pool keeps every step it finished. 256 MiniLM texts take about 3-4 s on
# one core: short enough that a retrain of another project waits at most a step or two (the worker's
# featurizing slices end on a step), long enough that a step's file and cache writes cost under 1% of it.
STEP = 256
# Part files are merged into the main matrix once there are more than this many and they hold over half as many
# rows as it (so merging rewrites O(pool) rows in all, not O(pool) per step), and when the pool is complete.
MAX_PARTS = 16
BASE = "features.npz"
LEGACY = ("ids.npy", "features.npy")  # the main matrix before featurizing went in steps


@dataclass(frozen=True)
class Featured:
    """What :meth:`FeatureCache.ensure_some` left: the featurized items (``ids``, features ``X``), and
    ``done`` of the project's ``total`` items featurized."""
    ids: np.ndarray
    X: np.ndarray
    done: int
    total: int

    @property
    def complete(self) -> bool:
        return self.done >= self.total


class FeatureCache:
    """A project's features, made progressively: items are featurized in steps, the ones a caller names
    first, then the rest in the import-time shuffle's order, so at any moment the featurized part of the pool
    is a uniform random sample of it (what lets a retrain rank it before the whole pool is in)."""

    def __init__(self, cache_root: str, project: dict, media_root: str | None = None,
                 embedding_cache: str | None = None):
        self.project = project
        self.dir = project_cache_dir(cache_root, project["id"])
        self.media_root = media_root
        self.embedding_cache = embedding_cache or os.path.join(cache_root, "embeddings")
        # The featurizer the project's setting means now (None: the current default, or its fallback).
        self.featurizer_name, self.notice = resolve(project["item_type"], project.get("featurizer"))
        os.makedirs(self.dir, exist_ok=True)
        self._base_rows = 0
        for name in LEGACY:  # made before featurizing went in steps: refeaturized (by lookups, for embeddings)
            if os.path.exists(self._path(name)):
                os.remove(self._path(name))

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _parts(self) -> list[str]:
        return sorted(n for n in os.listdir(self.dir) if n.startswith("part-") and n.endswith(".npz"))

    def _load(self):
        """(state, ids, X) as cached, or (None, None, None) when there is no usable cache."""
        try:
            with open(self._path("featurizer.pkl"), "rb") as fh:
                state = pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError):
            return None, None, None
        if state.get("spec") != self._spec():
            return None, None, None
        id_parts, X_parts = [], []
        self._base_rows = 0
        try:
            if os.path.exists(self._path(BASE)):
                with np.load(self._path(BASE)) as base:
                    id_parts.append(base["ids"])
                    X_parts.append(base["X"])
                self._base_rows = len(id_parts[0])
            for name in self._parts():
                with np.load(self._path(name)) as part:
                    id_parts.append(part["ids"])
                    X_parts.append(part["X"])
        except (OSError, ValueError, KeyError, EOFError):
            return None, None, None
        if any(len(i) != len(x) for i, x in zip(id_parts, X_parts)):
            return None, None, None
        X_parts = [x for x in X_parts if x.size]
        if not X_parts:
            return state, np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.concatenate(id_parts).astype(np.int64)
        X = np.vstack(X_parts)
        # A merge cut short by a crash leaves a part's rows in the main matrix too: the first copy counts.
        ids, first = np.unique(ids, return_index=True)
        return state, ids, X[first]

    def _spec(self):
        # created_at: a project made after another was deleted may get its id, never its features.
        # The resolved name, not the setting: when the default changes (or falls back), the features are
        # made afresh instead of mixing two feature spaces.
        return {"item_type": self.project["item_type"], "featurizer": self.featurizer_name,
                "created_at": self.project.get("created_at")}

    def _new_featurizer(self):
        params = {}
        if self.project["item_type"] == "image" and self.media_root is not None:
            params["root"] = self.media_root
        if self.notice:
            log.warning("project %s: %s", self.project["id"], self.notice)
        return make_featurizer(self.project["item_type"], self.featurizer_name, **params)

    def _prepare(self, featurizer):
        """Point a cached-embedding featurizer at this instance's content-hash cache."""
        return embcache.attach(featurizer, self.embedding_cache)

    def ensure(self, db, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """(item_ids, features) for every item of the project, computing only what is missing."""
        featured = self.ensure_some(db, progress=progress)
        return featured.ids, featured.X

    def ensure_some(self, db, progress=None, first=(), at_least: int | None = None,
                    budget: float | None = None, step: int = STEP) -> Featured:
        """Featurize what is missing, in steps: the items ``first`` names, then the rest in shuffle order,
        until ``at_least`` items are featurized and ``budget`` seconds are spent (a step started within the
        budget finishes); with neither, every item. Returns the featurized items still in the project."""
        started = time.perf_counter()
        project_id = self.project["id"]
        all_ids = np.asarray(store.all_item_ids(db, project_id), dtype=np.int64)
        state, ids, X = self._load()
        if state is not None and not self._still_fits(state, len(all_ids)):
            state = None
        if state is None:
            if len(all_ids) == 0:
                return Featured(all_ids, np.zeros((0, 0), dtype=np.float32), 0, 0)
            state, ids, X = self._fresh(db, len(all_ids), progress)
        featurizer = self._prepare(state["featurizer"])
        self.fitted = featurizer  # the label names' vectors come from it (learning.zeroshot)
        have = set(ids.tolist())
        in_project = set(all_ids.tolist())
        order = [i for i in dict.fromkeys(int(i) for i in first) if i in in_project and i not in have]
        n_first, wanted = len(order), set(order)
        order += [i for i in store.shuffled_item_ids(db, project_id) if i not in have and i not in wanted]
        done = len(in_project & have)
        everything = at_least is None and budget is None
        pos = 0
        if progress and order:
            progress("featurizing", done / len(all_ids))
        while pos < len(order):
            if not (everything or pos < n_first or (at_least is not None and done < at_least)
                    or (budget is not None and time.perf_counter() - started < budget)):
                break
            size = step
            if not everything and pos >= n_first and at_least is not None and done < at_least and (
                    budget is None or time.perf_counter() - started >= budget):
                size = min(step, at_least - done)  # no more than asked for when only ``at_least`` is why
            chunk = order[pos:pos + size]

            def within(n, _total, base=done):  # a slow featurizer reports its own progress inside a step
                progress("featurizing", (base + n) / len(all_ids))

            X_step = self._transform(db, featurizer, chunk, within if progress else None)
            self._save_part(np.asarray(chunk, dtype=np.int64), X_step)
            ids, X = _append(ids, X, np.asarray(chunk, dtype=np.int64), X_step)
            pos += len(chunk)
            done += len(chunk)
            if progress:
                progress("featurizing", done / len(all_ids))
        parts = len(self._parts())
        if (parts > MAX_PARTS and parts * step > self._base_rows / 2) or (pos >= len(order) and parts):
            self._merge(ids, X)
        keep = np.isin(ids, all_ids)
        return Featured(ids[keep], X[keep], int(keep.sum()), int(len(all_ids)))

    def _still_fits(self, state, n_items: int) -> bool:
        """Whether the cached featurizer still serves: one that learns from the items (a vocabulary, an SVD)
        is refitted once the project grew by REFIT_GROWTH since its fit; one that featurizes each item on its
        own (sentence embeddings) always serves."""
        if getattr(state["featurizer"], "item_wise", False):
            return True
        return n_items <= (1 + REFIT_GROWTH) * max(state["n_fit"], 1)

    def _fresh(self, db, n_items: int, progress):
        """A new featurizer fitted on every item; the old features go."""
        for name in (BASE, *LEGACY, *self._parts()):
            try:
                os.remove(self._path(name))
            except FileNotFoundError:
                pass
        featurizer = self._prepare(self._new_featurizer())
        if progress:
            progress("fitting featurizer", 0.0)
        items = [data for chunk in store.iter_items_data(db, self.project["id"]) for _, data in chunk]
        featurizer.fit(items)
        del items
        state = {"spec": self._spec(), "featurizer": featurizer, "n_fit": n_items}
        _atomic_write(self._path("featurizer.pkl"), lambda fh: pickle.dump(state, fh))
        self._base_rows = 0
        return state, np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)

    def _transform(self, db, featurizer, item_ids, progress=None):
        data = [d for chunk in store.iter_items_data(db, self.project["id"], item_ids) for _, d in chunk]
        if progress is not None and _takes_progress(featurizer):
            X = featurizer.transform(data, progress=progress)
        else:
            X = featurizer.transform(data)
        return np.asarray(X, dtype=np.float32)

    def _save_part(self, ids, X):
        parts = self._parts()
        number = int(parts[-1][5:-4]) + 1 if parts else 1
        _atomic_write(self._path(f"part-{number:06d}.npz"), lambda fh: np.savez(fh, ids=ids, X=X))

    def _merge(self, ids, X):
        """The parts folded into the main matrix (written first: a crash before the parts are removed leaves
        their rows twice, and loading keeps one)."""
        parts = self._parts()
        _atomic_write(self._path(BASE), lambda fh: np.savez(fh, ids=ids, X=X))
        self._base_rows = len(ids)
        for name in parts:
            os.remove(self._path(name))


def _append(ids, X, new_ids, X_new):
    if X.size == 0:
        return new_ids, X_new
    return np.concatenate([ids, new_ids]), np.vstack([X, X_new])


def _takes_progress(featurizer) -> bool:
    if not getattr(featurizer, "supports_progress", False):
        return False
    try:
        return "progress" in inspect.signature(featurizer.transform).parameters
    except (TypeError, ValueError):
        return False

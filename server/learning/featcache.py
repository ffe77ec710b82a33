"""Per-project feature cache on disk, so a retrain never featurizes an item twice.

Files live in ``instance/cache/project-<id>/``: the fitted featurizer (pickle),
the item ids and a float32 matrix, each replaced atomically. Only the retrain
worker writes them, one job at a time, so no locking is needed.

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


class FeatureCache:
    def __init__(self, cache_root: str, project: dict, media_root: str | None = None,
                 embedding_cache: str | None = None):
        self.project = project
        self.dir = project_cache_dir(cache_root, project["id"])
        self.media_root = media_root
        self.embedding_cache = embedding_cache or os.path.join(cache_root, "embeddings")
        # The featurizer the project's setting means now (None: the current default, or its fallback).
        self.featurizer_name, self.notice = resolve(project["item_type"], project.get("featurizer"))
        os.makedirs(self.dir, exist_ok=True)

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _load(self):
        try:
            with open(self._path("featurizer.pkl"), "rb") as fh:
                state = pickle.load(fh)
            ids = np.load(self._path("ids.npy"))
            X = np.load(self._path("features.npy"))
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            return None, None, None
        if state.get("spec") != self._spec() or len(ids) != len(X):
            return None, None, None
        return state, ids, X

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
        project_id = self.project["id"]
        all_ids = np.asarray(store.all_item_ids(db, project_id), dtype=np.int64)
        state, ids, X = self._load()
        if state is not None:
            missing = np.setdiff1d(all_ids, ids, assume_unique=True)
            if len(missing) == 0:
                keep = np.isin(ids, all_ids)
                return ids[keep], X[keep]
            if len(missing) <= REFIT_GROWTH * state["n_fit"]:
                featurizer = self._prepare(state["featurizer"])
                X_new = self._transform(db, featurizer, missing.tolist(), progress)
                ids = np.concatenate([ids, missing])
                X = np.vstack([X, X_new])
                self._save(state, ids, X)
                keep = np.isin(ids, all_ids)
                return ids[keep], X[keep]
        if len(all_ids) == 0:
            return all_ids, np.zeros((0, 0), dtype=np.float32)
        featurizer = self._prepare(self._new_featurizer())
        if progress:
            progress("fitting featurizer", 0.0)
        items = [data for chunk in store.iter_items_data(db, project_id) for _, data in chunk]
        featurizer.fit(items)
        del items
        X = self._transform(db, featurizer, all_ids.tolist(), progress)
        state = {"spec": self._spec(), "featurizer": featurizer, "n_fit": len(all_ids)}
        self._save(state, all_ids, X)
        return all_ids, X

    def _transform(self, db, featurizer, item_ids, progress):
        parts = []
        done = 0
        total = max(len(item_ids), 1)
        if progress:
            progress("featurizing", 0.0)
        chunked = progress is not None and _takes_progress(featurizer)
        for chunk in store.iter_items_data(db, self.project["id"], item_ids):
            if chunked:
                # A slow featurizer (sentence embeddings) reports each of its own steps.
                def step(n, _total, base=done):
                    progress("featurizing", (base + n) / total)

                X = featurizer.transform([data for _, data in chunk], progress=step)
            else:
                X = featurizer.transform([data for _, data in chunk])
            parts.append(np.asarray(X, dtype=np.float32))
            done += len(chunk)
            if progress:
                progress("featurizing", done / total)
        return np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def _save(self, state, ids, X):
        _atomic_write(self._path("featurizer.pkl"), lambda fh: pickle.dump(state, fh))
        _atomic_write(self._path("ids.npy"), lambda fh: np.save(fh, ids))
        _atomic_write(self._path("features.npy"), lambda fh: np.save(fh, X))


def _takes_progress(featurizer) -> bool:
    if not getattr(featurizer, "supports_progress", False):
        return False
    try:
        return "progress" in inspect.signature(featurizer.transform).parameters
    except (TypeError, ValueError):
        return False

"""A content-addressed cache of sentence embeddings: one file per model, shared by every project.

A row is keyed by the SHA-256 of the exact text and holds its float32 vector, so
re-importing the same texts, a second project on the same data, or refitting a
project's featurizer costs lookups instead of model calls. The file lives in
``<instance>/cache/embeddings/`` unless ``ASSAY_EMBEDDING_CACHE`` (or the app's
``EMBEDDING_CACHE``) names another folder; deleting it only costs re-embedding.

The rows live in assay.store.embeddings; this module keeps the caching policy. :func:`attach` gives a
featurizer that takes a ``cache`` (:class:`assay.features.SentenceEmbedding`) the store for a folder.

In the server only the retrain worker writes it, a chunk at a time, each chunk
committed at once: a worker killed mid-import keeps every chunk it finished.
WAL mode and a busy timeout let other processes (``assay simulate --jobs``, a
second server on the same instance) read and write it too.
"""
from __future__ import annotations

import os

import numpy as np

from assay.store.embeddings import EmbeddingFile

ENV = "ASSAY_EMBEDDING_CACHE"


class EmbeddingStore:
    """``get(hashes)`` and ``put(hashes, vectors)`` of float32 vectors of one width, over one cache file."""

    def __init__(self, path: str, dim: int):
        self.path = path
        self.dim = int(dim)
        self._file = EmbeddingFile(path)

    def get(self, hashes: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for key, blob in self._file.get(hashes).items():
            vector = np.frombuffer(blob, dtype=np.float32)
            if vector.shape == (self.dim,):  # a row of another width is ignored (and overwritten)
                found[key] = vector
        return found

    def put(self, hashes: list[bytes], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # One transaction per chunk: committed before the next chunk starts.
        self._file.put([(h, v.tobytes()) for h, v in zip(hashes, vectors)])

    def count(self) -> int:
        return self._file.count()

    def close(self) -> None:
        self._file.close()


_OPEN: dict[str, EmbeddingStore] = {}


def attach(featurizer, folder: str | None = None):
    """Give ``featurizer`` (if it takes a ``cache``) the content-hash store in ``folder``, by default the
    ``ASSAY_EMBEDDING_CACHE`` folder; without either it keeps embedding every text. Returns the featurizer."""
    folder = folder or os.environ.get(ENV) or None
    if folder and hasattr(featurizer, "cache") and hasattr(featurizer, "cache_name"):
        path = os.path.join(os.path.abspath(folder), featurizer.cache_name())
        store = _OPEN.get(path)
        if store is None:
            store = _OPEN[path] = EmbeddingStore(path, featurizer.dim)
        featurizer.cache = store
    return featurizer

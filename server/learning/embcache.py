"""A content-addressed store of sentence embeddings: one SQLite file per model, shared by every project.

A row is keyed by the SHA-256 of the exact text and holds its float32 vector, so
re-importing the same texts, a second project on the same data, or refitting a
project's featurizer costs lookups instead of model calls. The file lives in
``<instance>/cache/embeddings/`` unless ``ASSAY_EMBEDDING_CACHE`` (or the app's
``EMBEDDING_CACHE``) names another folder; deleting it only costs re-embedding.

This module is the learning layer's (the featurizers never touch a database): :func:`attach` gives a
featurizer that takes a ``cache`` (:class:`server.features.SentenceEmbedding`) the store for a folder.

In the server only the retrain worker writes it, a chunk at a time, each chunk
committed at once: a worker killed mid-import keeps every chunk it finished.
WAL mode and a busy timeout let other processes (``assay simulate --jobs``, a
second server on the same instance) read and write it too.
"""
from __future__ import annotations

import os
import sqlite3

import numpy as np

ENV = "ASSAY_EMBEDDING_CACHE"
_LOOKUP_CHUNK = 500  # hashes per SELECT ... IN (...), well under SQLite's variable limit


class EmbeddingStore:
    """``get(hashes)`` and ``put(hashes, vectors)`` over one SQLite file of (sha256, float32 vector) rows."""

    def __init__(self, path: str, dim: int):
        self.path = path
        self.dim = int(dim)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS embeddings (sha256 BLOB PRIMARY KEY, vector BLOB NOT NULL)"
                          " WITHOUT ROWID")

    def get(self, hashes: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(hashes), _LOOKUP_CHUNK):
            part = hashes[start:start + _LOOKUP_CHUNK]
            rows = self.conn.execute(
                f"SELECT sha256, vector FROM embeddings WHERE sha256 IN ({','.join('?' * len(part))})", part)
            for key, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self.dim,):  # a row of another width is ignored (and overwritten)
                    found[bytes(key)] = vector
        return found

    def put(self, hashes: list[bytes], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.conn:  # one transaction per chunk: committed before the next chunk starts
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT OR REPLACE INTO embeddings (sha256, vector) VALUES (?, ?)",
                                  [(h, v.tobytes()) for h, v in zip(hashes, vectors)])

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


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

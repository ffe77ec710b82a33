"""A file of (content hash, vector bytes) rows: the embedding cache's storage (assay.learning.embcache).

One SQLite file per embedding model, apart from the project database: it is shared by every
project and instance that names the folder, and deleting it only costs re-embedding.
"""
from __future__ import annotations

import os
import sqlite3

from .db import in_chunks

_LOOKUP_CHUNK = 500  # hashes per SELECT ... IN (...)


class EmbeddingFile:
    """``get(hashes)`` and ``put(rows)`` over one file; each ``put`` is committed before it returns.

    WAL mode and a long busy timeout let other processes (``assay simulate --jobs``, a second server
    on the same instance) read and write the same file.
    """

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS embeddings (sha256 BLOB PRIMARY KEY, vector BLOB NOT NULL)"
                           " WITHOUT ROWID")

    def get(self, hashes: list[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        for part, marks in in_chunks(hashes, _LOOKUP_CHUNK):
            for key, blob in self._conn.execute(f"SELECT sha256, vector FROM embeddings WHERE sha256 IN ({marks})",
                                                part):
                found[bytes(key)] = blob
        return found

    def put(self, rows: list[tuple[bytes, bytes]]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO embeddings (sha256, vector) VALUES (?, ?)", rows)

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

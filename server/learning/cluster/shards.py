"""A pool's feature matrix as Parquet shards: fixed row counts, the item ids alongside, one shard read at a time.

Each shard is one file with an ``item_id`` column and one float column per feature (``f0`` …), so a worker
reads its shard without the rest of the pool, and the files can sit on storage every worker mounts.
"""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_ROWS = 250_000


def _table(ids_n: np.ndarray, X_n_D: np.ndarray) -> pa.Table:
    columns = {"item_id": pa.array(np.asarray(ids_n, dtype=np.int64))}
    for j in range(X_n_D.shape[1]):
        columns[f"f{j}"] = pa.array(np.ascontiguousarray(X_n_D[:, j]))
    return pa.table(columns)


def write_shards(X_N_D, ids_N, folder: str, rows_per_shard: int = DEFAULT_ROWS) -> list[str]:
    """Write the rows as shards of ``rows_per_shard`` rows (the last one shorter) and return their paths in order."""
    X_N_D = np.asarray(X_N_D)
    if X_N_D.ndim != 2 or len(X_N_D) != len(ids_N):
        raise ValueError(f"need a 2-D matrix with one id per row, got {X_N_D.shape} and {len(ids_N)} ids")
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be at least 1, got {rows_per_shard}")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for n, start in enumerate(range(0, len(X_N_D), rows_per_shard)):
        stop = start + rows_per_shard
        paths.append(write_shard(os.path.join(folder, f"shard-{n:05d}.parquet"), ids_N[start:stop], X_N_D[start:stop]))
    return paths


def write_shard(path: str, ids_n, X_n_D) -> str:
    """One shard (e.g. for a generator that makes a pool too large to hold, shard by shard)."""
    # No dictionary encoding: float features never repeat, and it would only cost time.
    pq.write_table(_table(np.asarray(ids_n), np.asarray(X_n_D)), path, use_dictionary=False, compression="none")
    return path


def read_shard(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, features) of one shard, the features in the dtype they were written with."""
    table = pq.read_table(path)
    ids = table.column("item_id").to_numpy()
    features = [name for name in table.column_names if name != "item_id"]
    X = np.empty((table.num_rows, len(features)), dtype=table.schema.field(features[0]).type.to_pandas_dtype()
                 if features else np.float64)
    for j, name in enumerate(features):
        X[:, j] = table.column(name).to_numpy()
    return ids, X


def shard_rows(paths: list[str]) -> list[int]:
    """Each shard's row count, from the Parquet footers alone."""
    return [pq.ParquetFile(p).metadata.num_rows for p in paths]

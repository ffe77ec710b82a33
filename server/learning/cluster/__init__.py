"""Pool scoring on a Dask cluster, for pools too large for one process.

The pool's features live as Parquet shards (:mod:`.shards`) that the workers read one at a time; each
worker task scores one shard and returns only its candidates, and the driver merges them
(:mod:`.scoring`): exactly for top-k and the power/softmax Gumbel-top-k, by a shortlist for DPP.
:mod:`.engine` connects to the cluster ``ASSAY_CLUSTER`` names (a scheduler address, or ``local``).
"""
from __future__ import annotations

from .engine import cluster_address, connect
from .scoring import ClusterUnsupported, cluster_round, select_on_cluster, supports
from .shards import read_shard, shard_rows, write_shards

__all__ = ["ClusterUnsupported", "cluster_address", "cluster_round", "connect", "read_shard", "select_on_cluster",
           "shard_rows", "supports", "write_shards"]

"""Which Dask cluster scores the pool: ``ASSAY_CLUSTER`` names a scheduler (``tcp://host:8786``) or ``local``.

``local`` starts a LocalCluster of ``ASSAY_CLUSTER_WORKERS`` worker processes (default 2), one thread each,
for as long as the ``connect`` block lasts: what tests and a single large machine use. A scheduler address
is a cluster someone else runs; its workers must see the folder the shards are written to
(``ASSAY_CLUSTER_DIR``, default the temp dir), e.g. a shared mount.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os

from assay.errors import AssayError


class ClusterError(AssayError):
    status = 500


def cluster_address(value: str | None = None) -> str | None:
    """The cluster to use: ``value`` if given, else ``ASSAY_CLUSTER``; None (or empty) means one process."""
    value = os.environ.get("ASSAY_CLUSTER", "") if value is None else value
    return value.strip() or None


@contextlib.contextmanager
def connect(address: str):
    """A ``distributed.Client`` on ``address`` (or on a fresh LocalCluster for ``local``), closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the extra is not installed
        raise ClusterError("ASSAY_CLUSTER is set but dask.distributed is not installed: "
                           "pip install 'assay[cluster]', or unset ASSAY_CLUSTER") from None
    if address == "local":
        workers = int(os.environ.get("ASSAY_CLUSTER_WORKERS", "2"))
        # The server's retrain worker is a daemonic process, which may not start children: there the local
        # cluster's workers are threads of it (same picks; the shards still bound what each task holds).
        processes = not multiprocessing.current_process().daemon
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r} ({exc}): start it, fix ASSAY_CLUSTER, "
                           "or unset it to score in one process") from None
    with client:
        yield client

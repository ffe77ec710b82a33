"""What crosses the pipe between the retrain dispatcher and its worker process, and the model version a job records.

Plain frozen dataclasses at module level, so that pickle (the multiprocessing pipe) can carry them.
The store keeps its columns and JSON as they were: ``ModelVersion.as_row`` and ``from_row`` convert
at that boundary.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    """One retrain of one project, as the dispatcher sends it to the worker."""
    db_path: str
    cache_root: str
    media_root: str
    project_id: int
    settings: dict = field(default_factory=dict)
    # 'retrain': fit and rank whatever share of the pool is featurized, always recording a version.
    # 'featurize': a slice of the pool's featurizing, recording a version (a wider ranking) only once the
    # featurized share has doubled since the last version, or is complete.
    kind: str = "retrain"


@dataclass(frozen=True)
class ModelVersion:
    """A model version: what a retrain produced (or why it failed), as the ``model_versions`` table holds it."""
    status: str  # 'ok' | 'cold_start' | 'failed' | 'timeout'
    model: str
    strategy: str
    n_labels: int
    label_counts: dict = field(default_factory=dict)
    pool_size: int | None = None
    ranked: int | None = None  # the pool items ranked: fewer than pool_size while featurizing goes on
    accuracy: float | None = None
    accuracy_std: float | None = None
    accuracy_method: str | None = None
    fit_seconds: float | None = None
    acquire_seconds: float | None = None
    total_seconds: float | None = None
    error: str | None = None
    estimate: float | None = None
    estimate_low: float | None = None
    estimate_high: float | None = None
    kappa: float | None = None
    stop_signal: int | None = None
    evaluation: dict | None = None
    # Kept beside the version (stop_predictions table), for the next version's kappa; not a column.
    stop_predictions: dict | None = None
    # Given by the store when it records the version.
    version: int | None = None
    created_at: str | None = None

    def as_row(self) -> dict:
        """The dict ``store.replace_queue`` records (JSON columns as objects: the store encodes them)."""
        row = dataclasses.asdict(self)
        del row["version"], row["created_at"]
        return row

    @classmethod
    def from_row(cls, row) -> "ModelVersion":
        """A ``model_versions`` row as the store returns it; its JSON columns decoded or not."""
        row = dict(row)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in known}
        for key in ("label_counts", "evaluation"):
            if isinstance(values.get(key), str):
                values[key] = json.loads(values[key])
        values["label_counts"] = values.get("label_counts") or {}
        return cls(**values)

    def public(self) -> dict:
        """The version as the stats route lists it in ``history`` (the fields and their order are the API's)."""
        return {k: getattr(self, k) for k in PUBLIC_FIELDS}


PUBLIC_FIELDS = ("version", "status", "model", "strategy", "n_labels", "label_counts", "accuracy", "accuracy_std",
                 "accuracy_method", "estimate", "estimate_low", "estimate_high", "kappa", "stop_signal",
                 "fit_seconds", "acquire_seconds", "total_seconds", "pool_size", "ranked", "error", "created_at")


@dataclass(frozen=True)
class JobResult:
    """A finished job: its model version and the new queue (rows ``{"item_id", "score", "strategy", "prediction",
    "selection_prob"}``), and the version's predictions for the labeled items (rows ``{"item_id", "label",
    "confidence", "held_out"}``; None: this job made none, and the previous ones stay)."""
    version: ModelVersion | None
    queue: list | None = field(default_factory=list)
    predictions: list | None = None
    # (done, total): the project's items featurized when the job ended. A featurizing slice that did not
    # rank anew has no version and no queue (None: the queue stays).
    featurized: tuple | None = None


# The worker's other messages.

@dataclass(frozen=True)
class Ready:
    """The worker process has imported what jobs need and takes jobs."""


@dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float


@dataclass(frozen=True)
class JobFailed:
    """The job raised: what people read (``message``) and the traceback for the log."""
    message: str
    traceback: str

"""Retraining off the request path: a dispatcher thread feeding a worker process.

Requests only call :meth:`RetrainService.labels_arrived` (which holds the policy
of when to retrain), ``retrain_now`` or ``request``; each returns at once. One
dispatcher thread runs jobs one at a time (so never two retrains of a project
at once) in a separate process: a model that hangs past the timeout is killed,
one that raises or crashes the process is recorded as failed, and either way
the project keeps serving its last good queue.

With ``workers="external"`` (``ASSAY_WORKERS=external``) the service starts no thread and no process:
requests become rows of the ``jobs`` table, which ``assay worker`` processes claim
(assay.learning.jobqueue) and run through this same class, so both paths record a job alike.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
import traceback
import weakref

from assay import store
from assay.evaluation.stopping import reference_labels
from assay.webhooks import events
from .records import Job, JobFailed, JobResult, ModelVersion, Progress, Ready

log = logging.getLogger(__name__)
STARTUP_TIMEOUT = 120.0
# Featurizing (a big import's embeddings) does not count against the retrain timeout: while it reports
# progress the deadline moves, and it is stopped only when no step finishes for max(timeout, this long).
# The fit and acquisition that follow get the whole timeout from the moment featurizing ends.
FEATURIZING_STAGES = frozenset({"fitting featurizer", "featurizing"})
FEATURIZING_STALL = 120.0
THREAD_NAME = "assay-retrain"
WORKER_MODES = ("embedded", "external")
# Every service not yet garbage-collected: lets tests check that none leaves a thread or a process behind.
_SERVICES: "weakref.WeakSet[RetrainService]" = weakref.WeakSet()


def live_services() -> list["RetrainService"]:
    return list(_SERVICES)


def _worker_main(conn, threads: int = 1, niceness: int = 0):
    """The worker process: run jobs sent over ``conn`` until it is closed.

    It runs with few math threads (one by default), so that on a small machine the web server keeps a core
    and annotators never wait on a retrain. Not niced by default: on a busy machine a niced worker got almost
    no CPU and a new project's first model took minutes (``niceness``: ASSAY_WORKER_NICE).
    """
    import os

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # read when numpy's BLAS loads, just below
    try:
        os.nice(niceness)
    except OSError:
        pass
    from .job import run_job

    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass

    _warm_up()
    conn.send(Ready())
    # The sentence-embedding model (1-2 s to load) in the background: a new text project's first job needs it,
    # and this way neither the worker's start nor a job that does not need it waits for it.
    from assay.features.text import warm_model

    import threading

    threading.Thread(target=warm_model, name="assay-warm-model", daemon=True).start()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return

        def progress(stage, fraction):
            conn.send(Progress(stage, float(fraction)))

        try:
            result = run_job(job, progress=progress)
        except BaseException as exc:  # report everything: a plug-in model can raise anything
            conn.send(JobFailed(failure_message(exc), traceback.format_exc()))
        else:
            conn.send(result)


def failure_message(exc: BaseException) -> str:
    """What a failed job records for people to read: the error, and for an import failure where to fix it.

    The usual cause is a custom model or featurizer that the CLI's shell can import (a PYTHONPATH
    set there, a package installed in another environment) but the server's worker cannot.
    """
    text = f"{type(exc).__name__}: {exc}"
    missing = _import_error(exc)
    if missing is None:
        return text
    what = f"module {missing.name!r} is" if missing.name else "a module the model or featurizer needs is"
    return (f"{text} — {what} not importable in the server's environment, which may differ from the shell "
            "where the CLI imported it: install the package there, or set PYTHONPATH for the server process "
            "and restart it; then retrain.")


def _import_error(exc: BaseException | None) -> ImportError | None:
    # Model and featurizer loaders re-raise import failures as their own errors ("from None"), which
    # still keeps the ImportError as the context.
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ImportError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _warm_up():
    """Import what a first job would import lazily and fit a tiny model, so it starts at full speed.

    Best effort: a failure here only means the first job pays for it instead.
    """
    try:
        import numpy as np
        import sklearn.model_selection  # noqa: F401  (cross-validated accuracy)

        from assay.models import make_model

        rng = np.random.default_rng(0)
        X = rng.normal(size=(20, 4))
        make_model("logreg").fit(X, np.array(["a", "b"] * 10, dtype=object)).predict_proba(X)
    except Exception:
        log.debug("warming the retrain worker failed", exc_info=True)


class RetrainService:
    def __init__(self, db, cache_root: str, media_root: str, timeout: float = 300.0, settings: dict | None = None,
                 worker_threads: int = 1, on_events=None, workers: str = "embedded", worker_nice: int = 0):
        if workers not in WORKER_MODES:
            from assay.errors import ConfigurationError

            raise ConfigurationError(f"ASSAY_WORKERS={workers!r} is not a worker mode: set it to 'embedded' (the "
                                     "server retrains in its own worker process) or 'external' (run `assay worker`)")
        self.workers = workers
        self.db = db
        self.cache_root = cache_root
        self.media_root = media_root
        self.timeout = float(timeout)
        self.settings = dict(settings or {})
        self.worker_threads = int(worker_threads)
        self.worker_nice = int(worker_nice)
        self.on_events = on_events  # called when a recorded version left webhook deliveries in the outbox
        self._cond = threading.Condition()
        self._pending: list[int] = []  # retrains asked for, first come first served
        # Projects whose pool is not all featurized yet: the dispatcher featurizes them a slice each in turn,
        # whenever no retrain waits (assay.learning.featcache).
        self._background: list[int] = []
        self._running: int | None = None
        self._running_kind: str | None = None
        self._progress: dict[int, dict] = {}
        self._thread: threading.Thread | None = None
        self._process = None
        self._conn = None
        self._stopped = False
        self._proc_lock = threading.Lock()  # guards starting and stopping the worker process
        self._start_lock = threading.Lock()  # one thread starts the worker and reads its "ready"
        self._warmer: threading.Thread | None = None
        self._featurized: dict[int, tuple[int, int]] = {}  # (done, total) as the project's last job left it
        self.jobs_done = 0
        _SERVICES.add(self)

    # -- called from request threads --------------------------------------
    def labels_arrived(self, project: dict) -> bool:
        """Start a retrain if ``retrain_every`` labels arrived since the last model version.

        Also starts the first job of a project (featurizing and the cold-start queue) once it has items.
        Nothing starts while the project's job runs or waits: the dispatcher looks again when it ends.
        Returns whether one was requested.
        """
        if self.busy(project["id"]) or not self._wants_retrain(project):
            return False
        self.request(project["id"])
        return True

    def retrain_now(self, project_id: int) -> bool:
        """Start a retrain whatever the count (the owner asked), unless the project's job runs or waits."""
        if self.busy(project_id):
            return False
        self.request(project_id)
        return True

    def _wants_retrain(self, project: dict) -> bool:
        """Whether the project has items and no model yet, or ``retrain_every`` labels beyond its last version."""
        last = store.latest_version(self.db, project["id"])
        counts = store.counts(self.db, project["id"])
        if counts["total"] == 0:
            return False
        return last is None or counts["labeled"] - last["n_labels"] >= int(project["retrain_every"])

    def request(self, project_id: int) -> None:
        """Ask for a retrain of the project; coalesces with one already waiting."""
        if self.external:
            if not self._stopped:
                store.enqueue_job(self.db, project_id)
            return
        with self._cond:
            if self._stopped:
                return
            if project_id not in self._pending:
                self._pending.append(project_id)
            self._start_thread()
            self._cond.notify_all()

    def _start_thread(self) -> None:
        """Under ``_cond``: the dispatcher thread, started if it is not running."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
            self._thread.start()

    def warm(self, *, for_jobs: bool = False) -> None:
        """Start the worker process now, in the background, and return at once.

        A worker spends seconds importing numpy, scikit-learn and the models; started
        with the server, that is done before the first labels trigger the first retrain.
        A web process with external workers starts none; ``assay worker`` passes ``for_jobs``, since
        running jobs is what it is for.
        """
        with self._cond:
            if self._stopped or self._warmer is not None or (self.external and not for_jobs):
                return
            self._warmer = threading.Thread(target=self._ensure_process, name="assay-warm", daemon=True)
            self._warmer.start()

    @property
    def external(self) -> bool:
        return self.workers == "external"

    def busy(self, project_id: int) -> bool:
        if self.external:
            return bool(store.open_jobs(self.db, project_id))
        with self._cond:
            # A featurizing slice is not a retrain: labels that arrive during one ask for the retrain, which
            # runs as soon as the slice ends.
            return (self._running == project_id and self._running_kind == "retrain") or project_id in self._pending

    def progress(self, project_id: int) -> dict | None:
        if self.external:
            return _job_progress(store.open_jobs(self.db, project_id))
        with self._cond:
            if self._running == project_id and self._running_kind == "retrain":
                return dict(self._progress.get(project_id, {"stage": "starting", "fraction": 0.0}))
            if project_id in self._pending:
                return {"stage": "waiting", "fraction": 0.0}
            return None

    def featurizing(self, project_id: int) -> dict | None:
        """``{"done", "total"}``: how much of the project is featurized, as its last job left it."""
        return store.featurizing(self.db, project_id)

    def resume_featurizing(self) -> None:
        """Take up the featurizing a stopped server left unfinished (its steps are cached: it goes on)."""
        if self.external:
            for project_id in store.unfinished_featurizing(self.db):
                if not store.open_jobs(self.db, project_id):
                    store.enqueue_job(self.db, project_id)
            return
        with self._cond:
            for project_id in store.unfinished_featurizing(self.db):
                if project_id not in self._background:
                    self._background.append(project_id)
            if self._background:
                self._start_thread()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no job runs or waits, featurizing included (for tests and the CLI, never for requests)."""
        deadline = time.monotonic() + timeout
        if self.external:
            while store.open_jobs(self.db):
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.2)
            return True
        with self._cond:
            while self._pending or self._background or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop for good: drop waiting jobs, kill the worker process and join the dispatcher thread.

        A job in progress is abandoned (its results are only written when it completes). Returns
        whether the thread and the process are gone; only then may the caller close the database
        the thread reads (closing an SQLite connection another thread is using can crash the process).
        """
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._background.clear()
            self._cond.notify_all()
            thread = self._thread
        self._stop_process()
        if self._warmer is not None:
            self._warmer.join(timeout)  # its wait for "ready" ends with the process
        if thread is not None and thread is not threading.current_thread():
            # Without its process the thread is at most one poll (0.5 s) or one SQLite call from returning.
            thread.join(timeout)
            if thread.is_alive():
                log.error("the retrain dispatcher thread did not stop within %g s", timeout)
                return False
        return not self.alive()

    def alive(self) -> bool:
        """Whether the dispatcher thread or the worker process is still running."""
        thread, proc, warmer = self._thread, self._process, self._warmer
        return bool((thread is not None and thread.is_alive()) or (proc is not None and proc.is_alive())
                    or (warmer is not None and warmer.is_alive()))

    # -- the dispatcher thread -----------------------------------------------
    def _loop(self):
        while True:
            with self._cond:
                while not self._pending and not self._background and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                # Retrains first, in the order asked; featurizing slices only when none waits, a project
                # at a time in turn, so no project's model waits behind another's pool.
                if self._pending:
                    project_id, kind = self._pending.pop(0), "retrain"
                else:
                    project_id, kind = self._background.pop(0), "featurize"
                self._running, self._running_kind = project_id, kind
            again = unfinished = False
            try:
                recorded = self._run(project_id, kind=kind)
                again = recorded and self._labels_arrived_meanwhile(project_id)
                unfinished = self._featurizing_unfinished(project_id)
            except Exception:  # the dispatcher must survive anything
                log.exception("retrain of project %s failed in the dispatcher", project_id)
            finally:
                with self._cond:
                    self._running = self._running_kind = None
                    # Queued in the same step that ends the job, so wait_idle never sees a gap between the two.
                    if again and not self._stopped and project_id not in self._pending:
                        self._pending.append(project_id)
                    if unfinished and not self._stopped and project_id not in self._background:
                        self._background.append(project_id)
                    self._progress.pop(project_id, None)
                    self.jobs_done += 1
                    self._cond.notify_all()

    def _featurizing_unfinished(self, project_id: int) -> bool:
        left = self._featurized.pop(project_id, None)
        return left is not None and left[0] < left[1]

    def _labels_arrived_meanwhile(self, project_id: int) -> bool:
        """Whether enough labels came in while the job ran to retrain again.

        Their triggers came while the project was busy and were dropped, and no later
        label may come to make up for them (the end of a burst).
        """
        try:
            return self._wants_retrain(store.get_project(self.db, project_id))
        except Exception:  # e.g. the project was deleted meanwhile
            return False

    def _ensure_process(self) -> bool:
        # The warm-up thread and the dispatcher may both get here: one starts the process and
        # waits for it, the other then finds it alive.
        with self._start_lock:
            with self._proc_lock:
                if self._stopped:
                    return False
                if self._process is not None and self._process.is_alive():
                    return True
                # spawn, not fork: the server has threads and open SQLite handles.
                ctx = mp.get_context("spawn")
                parent, child = ctx.Pipe()
                self._process = ctx.Process(target=_worker_main, args=(child, self.worker_threads, self.worker_nice),
                                            name="assay-worker", daemon=True)
                self._process.start()
                child.close()
                self._conn = parent
            # Importing numpy, scikit-learn and torch takes seconds; that must not count against a job's timeout.
            # (Waited for outside _proc_lock, so shutdown can kill a worker that is still starting.)
            try:
                ready = parent.poll(STARTUP_TIMEOUT) and isinstance(parent.recv(), Ready)
            except (EOFError, OSError):
                ready = False
            if not ready:
                if not self._stopped:
                    log.error("the retrain worker process did not start")
                self._stop_process()
                return False
            return True

    def _stop_process(self):
        with self._proc_lock:
            proc, conn = self._process, self._conn
            self._process = self._conn = None
        if proc is None:
            return
        # Shutting down mid-job loses nothing: results are only written after a job completes.
        proc.kill()
        proc.join(5)
        conn.close()

    # -- called by an external worker (assay.learning.jobqueue) ---------------
    def run_claimed(self, project_id: int, finish) -> bool:
        """Run one job of the project here and now, as the dispatcher would, and record its outcome.

        ``finish(tx, version)`` runs inside the transaction that records the model version and returns
        whether the job is still the caller's; if not, nothing is recorded. Returns whether it was.
        """
        kind = self._external_kind(project_id)
        with self._cond:
            self._running, self._running_kind = project_id, kind
        try:
            return bool(self._run(project_id, finish, kind=kind))
        finally:
            with self._cond:
                self._running = self._running_kind = None
                self._progress.pop(project_id, None)

    def _external_kind(self, project_id: int) -> str:
        """A claimed job retrains when labels (or no model yet) call for it, else featurizes a slice of a pool
        still being featurized (the job row says only which project)."""
        try:
            project = store.get_project(self.db, project_id)
            left = store.featurizing(self.db, project_id)
            if left is not None and left["done"] < left["total"] and not self._wants_retrain(project):
                return "featurize"
        except Exception:
            pass
        return "retrain"

    def current_progress(self, project_id: int) -> dict | None:
        """What the job this process runs last reported (the external worker's heartbeat carries it)."""
        with self._cond:
            return dict(self._progress[project_id]) if project_id in self._progress else None

    def wants_another(self, project_id: int) -> bool:
        """Whether labels that came in during the job call for the next one (see the dispatcher's loop), or
        the project's pool is still being featurized."""
        return self._labels_arrived_meanwhile(project_id) or self._featurizing_unfinished(project_id)

    def record_failure(self, project_id: int, status: str, message: str, seconds: float | None = None,
                       finish=None, project: dict | None = None) -> bool:
        """Record a failed model version (``status`` 'failed' or 'timeout'); the queue is left as it was.

        ``project``: the project as the job found it (its model and strategy are the version's).
        """
        project = project or store.get_project(self.db, project_id)
        labeled = store.counts(self.db, project_id)["labeled"]
        failure = ModelVersion(status=status, model=project["model"], strategy=project["strategy"], n_labels=labeled,
                               error=message, total_seconds=seconds)
        return self._record(project_id, None, failure.as_row(), finish=finish)

    def stop_job(self) -> None:
        """Kill the job this process runs, if any: nothing of it is recorded."""
        self._stop_process()

    def _run(self, project_id: int, finish=None, kind: str = "retrain") -> bool:
        """Run one job. Returns whether it recorded a model version (a good or a failed one): only
        then may the dispatcher look again, or a job that records nothing would repeat forever."""
        started = time.perf_counter()
        try:
            project = store.get_project(self.db, project_id)
        except Exception:
            return
        if not self._ensure_process():
            return
        conn = self._conn
        try:
            conn.send(Job(self.db.path, self.cache_root, self.media_root, project_id, self.settings, kind=kind))
        except (OSError, AttributeError):
            return
        deadline = time.monotonic() + self.timeout
        featurizing = False
        outcome = None
        while outcome is None:
            left = deadline - time.monotonic()
            if left <= 0:
                if featurizing:
                    stall = max(self.timeout, FEATURIZING_STALL)
                    outcome = ("timeout", f"featurizing made no progress for {stall:g} s; it was stopped "
                                          "(the embeddings computed so far are cached).")
                else:
                    outcome = ("timeout", f"the model took longer than the retrain timeout ({self.timeout:g} s); "
                                          "it was stopped. Raise ASSAY_RETRAIN_TIMEOUT or use a faster model.")
                self._stop_process()
                break
            try:
                if not conn.poll(min(left, 0.5)):
                    continue
                message = conn.recv()
            except (EOFError, OSError, AttributeError):
                if self._stopped:
                    return
                with self._proc_lock:
                    code = self._process.exitcode if self._process else None
                    self._process = self._conn = None
                outcome = ("failed", f"the worker process died (exit code {code}) while retraining")
                break
            if isinstance(message, Progress):
                with self._cond:
                    self._progress[project_id] = {"stage": message.stage, "fraction": message.fraction}
                now = time.monotonic()
                if message.stage in FEATURIZING_STAGES:
                    featurizing = True
                    deadline = now + max(self.timeout, FEATURIZING_STALL)
                elif featurizing:
                    # Featurizing is over: the model's time starts now.
                    featurizing = False
                    deadline = now + self.timeout
            elif isinstance(message, JobResult):
                outcome = ("result", message)
            else:
                log.warning("retrain of project %s failed: %s", project_id, message.traceback)
                outcome = ("failed", message.message)
        what, payload = outcome
        if what == "result":
            if payload.featurized is not None:
                self._featurized[project_id] = tuple(payload.featurized)
            version = payload.version
            return self._record(project_id, payload.queue, version.as_row() if version else None,
                                reference_labels(int(version.n_labels)) if version else None,
                                predictions=payload.predictions, finish=finish, featurized=payload.featurized)
        if kind == "featurize" and what == "timeout":
            # A slice that stalled: the model version stays the project's; its steps so far are cached.
            log.warning("featurizing project %s: %s", project_id, payload)
            return self._record(project_id, None, None, finish=finish)
        return self.record_failure(project_id, what, payload, time.perf_counter() - started, finish=finish,
                                   project=project)

    def _record(self, project_id: int, queue, version: dict | None, stop_reference_labels: int | None = None,
                predictions=None, finish=None, featurized=None) -> bool:
        """The version, its queue, its labeled items' predictions and its webhook deliveries, in one transaction.

        With ``finish`` (an external worker's job), the job's end goes in that transaction too, so a worker
        killed at any point leaves either both or neither. Returns whether anything was recorded.
        """
        try:
            with self.db.write() as tx:
                if finish is not None and not finish(tx, version or {}):
                    raise _NotOurs
                number = store.replace_queue(self.db, project_id, queue, version,
                                             stop_reference_labels=stop_reference_labels, predictions=predictions,
                                             featurized=featurized)
                hooked = events.version_recorded(tx, project_id, number) if number is not None else 0
        except _NotOurs:
            log.warning("the retrain of project %s was not recorded: its job went to another worker "
                        "(or the project was deleted)", project_id)
            return False
        if hooked and self.on_events is not None:
            self.on_events()
        return True


class _NotOurs(Exception):
    """Rolls back a result whose job lease lapsed and went to another worker."""


def _job_progress(jobs: list[dict]) -> dict | None:
    """``progress()`` from the project's open job rows (external workers)."""
    running = next((j for j in jobs if j["state"] == "running"), None)
    if running is not None and (running["claimed_until"] or 0) >= time.time():
        return {"stage": running["stage"] or "starting", "fraction": float(running["fraction"] or 0.0)}
    return {"stage": "waiting", "fraction": 0.0} if jobs else None

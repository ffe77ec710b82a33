"""``assay worker``: a process that claims retrain jobs from the database and runs them.

Each job is claimed under a lease that a heartbeat thread renews while it runs, and it ends in the same
transaction that records its model version: a worker killed at any moment (or its machine) leaves the
job either recorded or claimable again once the lease lapses. A job whose workers died ``max_attempts``
times is given up and recorded as a failed model version, as a crashed embedded worker's is.

The job itself runs through :meth:`RetrainService.run_claimed`, the embedded dispatcher's own code: the
same worker child process, timeout, progress, model version, queue, predictions and webhook events.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

from assay import store

log = logging.getLogger(__name__)


class Stopping(BaseException):
    """Raised in the main thread by SIGTERM or SIGINT: release the job in hand and exit."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobWorker:
    def __init__(self, service, lease: float = 60.0, max_attempts: int = 3, name: str | None = None):
        self.service = service
        self.db = service.db
        self.lease = float(lease)
        self.max_attempts = int(max_attempts)
        self.name = name or worker_name()
        self.jobs_done = 0

    def run(self, poll: float = 2.0, once: bool = False) -> int:
        """Claim and run jobs until stopped (:class:`Stopping`); with ``once``, at most one. Returns the jobs
        this call recorded."""
        start = self.jobs_done
        while True:
            job = self.claim()
            if job is not None:
                self.work(job)
                if once:
                    return self.jobs_done - start
            elif once:
                return self.jobs_done - start
            else:
                time.sleep(poll)

    def claim(self) -> dict | None:
        """Give up the jobs that lapsed too often, then take the next claimable one (or None)."""
        with self.db.write() as tx:
            for job in store.lapsed_jobs(tx, self.max_attempts):
                message = (f"the retrain was started {job['attempts']} times and each time its worker stopped "
                           "before finishing (killed, out of memory, or its machine died); see the workers' logs, "
                           "then retrain.")
                store.end_job(tx, job["id"], None, "failed", message)
                self.service.record_failure(job["project_id"], "failed", message)  # joins this transaction
            return store.claim_job(tx, self.name, self.lease)

    def work(self, job: dict) -> bool:
        """Run a claimed job to its recorded end; on :class:`Stopping`, kill it and hand it back, then re-raise."""
        project_id = job["project_id"]
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job["id"], project_id, done),
                                name="assay-job-heartbeat", daemon=True)
        beat.start()

        def finish(tx, version) -> bool:
            state = "failed" if version.get("status") in ("failed", "timeout") else "done"
            return store.end_job(tx, job["id"], self.name, state, version.get("error"))

        recorded = False
        try:
            recorded = self.service.run_claimed(project_id, finish)
        except Stopping:
            self.service.stop_job()
            done.set()
            beat.join()
            store.release_job(self.db, job["id"], self.name)
            log.info("stopping: job %s of project %s handed back", job["id"], project_id)
            raise
        finally:
            done.set()
            beat.join()
        if not recorded:
            # Nothing ran (the worker child did not start, the project went): let another worker try now.
            store.release_job(self.db, job["id"], self.name)
            return False
        self.jobs_done += 1
        if self.service.wants_another(project_id):
            store.enqueue_job(self.db, project_id)
        return True

    def _heartbeat(self, job_id: int, project_id: int, done: threading.Event) -> None:
        every = max(0.2, min(self.lease / 3.0, 5.0))
        while not done.wait(every):
            progress = self.service.current_progress(project_id) or {}
            try:
                mine = store.heartbeat_job(self.db, job_id, self.name, self.lease, progress.get("stage"),
                                           progress.get("fraction"))
            except Exception:  # a busy database: the lease has two more beats of slack
                log.warning("heartbeat of job %s failed", job_id, exc_info=True)
                continue
            if not mine:
                # Another worker retook it (this one stalled past its lease): its result could not be recorded.
                log.warning("job %s of project %s was retaken by another worker; stopping it here", job_id, project_id)
                self.service.stop_job()
                return

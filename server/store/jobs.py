"""Retrain jobs (``jobs``): requested by the web process, claimed under a lease by ``assay worker`` processes.

The claim is one transaction: on SQLite the serialized writer's ``BEGIN IMMEDIATE`` makes the SELECT and
the UPDATE that follows it atomic against every other process. On PostgreSQL the same statements map onto
``SELECT … FROM jobs … ORDER BY … LIMIT 1 FOR UPDATE SKIP LOCKED`` followed by the UPDATE, in one
transaction: two claimers skip each other's row instead of waiting, and the unique partial index
``jobs_one_running`` refuses a second running job of one project if both pick one in the same instant.
Times are epoch seconds (REAL), given by the caller's clock.
"""
from __future__ import annotations

import time

from .db import Database, dialect, lock_project, reading

# Jobs a claimer may take: queued ones, and running ones whose worker stopped renewing its lease. Never a
# project's queued job while it has a running one (live or lapsed: the lapsed one is retaken first).
_CLAIMABLE = """
    SELECT j.* FROM jobs j
    WHERE (j.state = 'queued' OR (j.state = 'running' AND j.claimed_until < :now))
      AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.project_id = j.project_id AND r.id != j.id
                      AND r.state = 'running')
    ORDER BY j.state = 'queued', j.id
    LIMIT 1
"""
_LOCK_CLAIMED = {"sqlite": "", "postgresql": " FOR UPDATE OF j SKIP LOCKED"}


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


def enqueue_job(db: Database, project_id: int, now: float | None = None) -> int:
    """Ask for a retrain of the project: the id of its queued job, a new one unless one already waits."""
    with db.write() as conn:
        lock_project(conn, project_id)  # two web processes asking at once make one job, not a unique-index error
        row = conn.execute("SELECT id FROM jobs WHERE project_id = ? AND state = 'queued'", (project_id,)).fetchone()
        if row is not None:
            return row[0]
        return conn.execute("INSERT INTO jobs (project_id, created_at) VALUES (?, ?)",
                            (project_id, _now(now))).lastrowid


def claim_job(tx, worker: str, lease: float, now: float | None = None) -> dict | None:
    """Inside an open write: take the next claimable job for ``worker`` until ``now + lease``, or None.

    The claim counts as an attempt. Retaking a lapsed job drops the project's queued job, if any: the
    retaken run reads every label there is when it starts, so it does what that one was asked for.
    """
    now = _now(now)
    row = tx.execute(_CLAIMABLE + _LOCK_CLAIMED[dialect(tx)], {"now": now}).fetchone()
    if row is None:
        return None
    if row["state"] == "running":
        tx.execute("DELETE FROM jobs WHERE project_id = ? AND state = 'queued'", (row["project_id"],))
    tx.execute("UPDATE jobs SET state = 'running', attempts = attempts + 1, claimed_by = ?, claimed_until = ?,"
               " heartbeat_at = ?, started_at = ?, stage = NULL, fraction = NULL WHERE id = ?",
               (worker, now + lease, now, now, row["id"]))
    return dict(tx.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())


def lapsed_jobs(tx, max_attempts: int, now: float | None = None) -> list[dict]:
    """Inside an open write: running jobs whose lease lapsed after ``max_attempts`` claims (to be given up)."""
    rows = tx.execute("SELECT * FROM jobs WHERE state = 'running' AND claimed_until < ? AND attempts >= ?",
                      (_now(now), int(max_attempts)))
    return [dict(r) for r in rows]


def heartbeat_job(db: Database, job_id: int, worker: str, lease: float, stage: str | None = None,
                  fraction: float | None = None, now: float | None = None) -> bool:
    """Push the lease of ``worker``'s running job on to ``now + lease``, with its progress.

    False: the job is no longer this worker's (its lease lapsed and another worker took it, or it ended).
    """
    now = _now(now)
    with db.write() as conn:
        cur = conn.execute("UPDATE jobs SET claimed_until = ?, heartbeat_at = ?, stage = coalesce(?, stage),"
                           " fraction = coalesce(?, fraction)"
                           " WHERE id = ? AND state = 'running' AND claimed_by = ?",
                           (now + lease, now, stage, fraction, job_id, worker))
        return cur.rowcount == 1


def end_job(tx, job_id: int, worker: str | None, state: str, error: str | None = None,
            now: float | None = None) -> bool:
    """Inside an open write: mark a running job ``done`` or ``failed``; ``worker`` None ends it whoever holds it.

    False (and nothing changed): the job is not running under ``worker`` any more.
    """
    sql = ("UPDATE jobs SET state = ?, error = ?, finished_at = ?, claimed_until = NULL"
           " WHERE id = ? AND state = 'running'")
    params = [state, error, _now(now), job_id]
    if worker is not None:
        sql += " AND claimed_by = ?"
        params.append(worker)
    return tx.execute(sql, params).rowcount == 1


def release_job(db: Database, job_id: int, worker: str) -> bool:
    """Give a running job back untried (its worker is stopping): claimable at once, and not counted as an attempt.

    If the project got a queued job meanwhile, that one stands for both and this row goes.
    """
    with db.write() as conn:
        row = conn.execute("SELECT project_id FROM jobs WHERE id = ? AND state = 'running' AND claimed_by = ?",
                           (job_id, worker)).fetchone()
        if row is None:
            return False
        if conn.execute("SELECT 1 FROM jobs WHERE project_id = ? AND state = 'queued'", (row[0],)).fetchone():
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        else:
            conn.execute("UPDATE jobs SET state = 'queued',"
                         " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, claimed_by = NULL,"
                         " claimed_until = NULL, started_at = NULL, stage = NULL, fraction = NULL WHERE id = ?",
                         (job_id,))
        return True


def open_jobs(source, project_id: int | None = None) -> list[dict]:
    """Queued and running jobs, oldest first; of one project, or of all."""
    sql = "SELECT * FROM jobs WHERE state IN ('queued', 'running')"
    params: tuple = ()
    if project_id is not None:
        sql += " AND project_id = ?"
        params = (project_id,)
    return [dict(r) for r in reading(source).execute(sql + " ORDER BY id", params)]


def project_jobs(source, project_id: int) -> list[dict]:
    """Every job of the project, oldest first."""
    rows = reading(source).execute("SELECT * FROM jobs WHERE project_id = ? ORDER BY id", (project_id,))
    return [dict(r) for r in rows]

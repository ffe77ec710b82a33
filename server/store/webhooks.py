"""Webhooks, their outbox and the log of delivery attempts (``webhooks``, ``webhook_outbox``, ``webhook_attempts``)."""
from __future__ import annotations

import json

from assay.errors import NotFound

from .db import Database, dialect, in_chunks, reading

HOOK_COLUMNS = "id, project_id, url, events, created_by, created_at"


def _hook_row(row) -> dict:
    hook = dict(row)
    hook["events"] = json.loads(hook["events"])
    return hook


def create_webhook(db: Database, project_id: int, url: str, events: list[str], secret: str,
                   created_by: str | None = None) -> int:
    with db.write() as conn:
        if conn.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone() is None:
            raise NotFound(f"no project {project_id}")
        cur = conn.execute("INSERT INTO webhooks (project_id, url, events, secret, created_by) VALUES (?, ?, ?, ?, ?)",
                           (project_id, url, json.dumps(list(events)), secret, created_by))
        return cur.lastrowid


def list_webhooks(source, project_id: int) -> list[dict]:
    """The project's webhooks (never their secrets), each with its deliveries counted by state."""
    conn = reading(source)
    hooks = [_hook_row(r) for r in conn.execute(
        f"SELECT {HOOK_COLUMNS} FROM webhooks WHERE project_id = ? ORDER BY id", (project_id,))]
    counts: dict[int, dict] = {}
    for hook_id, state, n in conn.execute(
            "SELECT hook_id, state, count(*) FROM webhook_outbox WHERE project_id = ? GROUP BY hook_id, state",
            (project_id,)):
        counts.setdefault(hook_id, {})[state] = n
    for hook in hooks:
        found = counts.get(hook["id"], {})
        hook["deliveries"] = {state: found.get(state, 0) for state in ("pending", "delivered", "failed")}
    return hooks


def get_webhook(source, project_id: int, hook_id: int) -> dict:
    row = reading(source).execute(f"SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = ? AND project_id = ?",
                                  (hook_id, project_id)).fetchone()
    if row is None:
        raise NotFound(f"project {project_id} has no webhook {hook_id}")
    return _hook_row(row)


def delete_webhook(db: Database, project_id: int, hook_id: int) -> dict:
    """Delete a webhook; its deliveries not yet made go with it."""
    with db.write() as conn:
        hook = get_webhook(conn, project_id, hook_id)
        conn.execute("DELETE FROM webhooks WHERE id = ?", (hook_id,))
        return hook


def subscribed_hooks(tx, project_id: int, event: str) -> list[int]:
    """Inside an open write (or any read): the ids of the project's webhooks that take ``event``."""
    conn = reading(tx)
    events = ("jsonb_array_elements_text(webhooks.events::jsonb) AS e(value)" if dialect(conn) == "postgresql"
              else "json_each(webhooks.events)")
    return [r[0] for r in conn.execute(
        f"SELECT id FROM webhooks WHERE project_id = ? AND EXISTS (SELECT 1 FROM {events} WHERE value = ?) ORDER BY id",
        (project_id, event))]


def add_deliveries(tx, rows: list[dict]) -> None:
    """Inside an open write: outbox rows ``{hook_id, project_id, event, delivery_id, body, next_attempt_at}``."""
    tx.executemany(
        "INSERT INTO webhook_outbox (hook_id, project_id, event, delivery_id, body, next_attempt_at)"
        " VALUES (:hook_id, :project_id, :event, :delivery_id, :body, :next_attempt_at)", rows)


# Another process's sender claiming at the same moment passes over these rows (SQLite: BEGIN IMMEDIATE).
_LOCK_CLAIMED = {"sqlite": "", "postgresql": " FOR UPDATE OF o SKIP LOCKED"}


def _skipping(skip_hooks, skip_projects) -> tuple[str, list]:
    """SQL and arguments passing over the deliveries of some webhooks and projects (those with no room now)."""
    sql, args = "", []
    for column, ids in (("o.hook_id", skip_hooks), ("o.project_id", skip_projects)):
        ids = sorted(set(ids or ()))
        if ids:
            sql += f" AND {column} NOT IN ({', '.join('?' * len(ids))})"
            args.extend(ids)
    return sql, args


def claim_deliveries(db: Database, now: float, claim_seconds: float, limit: int = 20,
                     skip_hooks=(), skip_projects=()) -> list[dict]:
    """Take the pending deliveries that are due and unclaimed, oldest first, for ``claim_seconds``; none of the
    webhooks in ``skip_hooks`` or the projects in ``skip_projects`` (their receivers are busy).

    Each comes with its webhook's url and secret: what a sender needs to sign and post it.
    """
    skip, skip_args = _skipping(skip_hooks, skip_projects)
    with db.write() as conn:
        rows = conn.execute(
            """
            SELECT o.id, o.hook_id, o.project_id, o.event, o.delivery_id, o.body, o.attempts, w.url, w.secret
            FROM webhook_outbox o JOIN webhooks w ON w.id = o.hook_id
            WHERE o.state = 'pending' AND o.next_attempt_at <= ? AND coalesce(o.claimed_until, 0) <= ?
            """ + skip + """
            ORDER BY o.next_attempt_at, o.id LIMIT ?
            """ + _LOCK_CLAIMED[dialect(conn)], (now, now, *skip_args, limit)).fetchall()
        for chunk, marks in in_chunks([r["id"] for r in rows]):
            conn.execute(f"UPDATE webhook_outbox SET claimed_until = ? WHERE id IN ({marks})",
                         (now + claim_seconds, *chunk))
        return [dict(r) for r in rows]


def release_claim(db: Database, *outbox_ids: int) -> None:
    """Give claimed deliveries back untried (the sender is stopping, or their receiver is busy): the next claim
    takes them at once. One transaction, however many."""
    with db.write() as conn:
        for chunk, marks in in_chunks(list(outbox_ids)):
            conn.execute(f"UPDATE webhook_outbox SET claimed_until = NULL WHERE id IN ({marks})", chunk)


def record_attempt(db: Database, outbox_id: int, attempt: int, status_code: int | None, error: str | None,
                   duration_ms: int | None, state: str, next_attempt_at: float | None) -> None:
    """Log one attempt and move its delivery on: ``delivered``, ``failed`` (given up), or ``pending`` again
    at ``next_attempt_at``. A delivery deleted meanwhile (its webhook or project went) is left alone."""
    with db.write() as conn:
        cur = conn.execute(
            "UPDATE webhook_outbox SET attempts = ?, state = ?, next_attempt_at = coalesce(?, next_attempt_at),"
            " claimed_until = NULL WHERE id = ?", (attempt, state, next_attempt_at, outbox_id))
        if cur.rowcount:
            conn.execute("INSERT INTO webhook_attempts (outbox_id, attempt, status_code, error, duration_ms)"
                         " VALUES (?, ?, ?, ?, ?)", (outbox_id, attempt, status_code, error, duration_ms))


def next_due(source, skip_hooks=(), skip_projects=()) -> float | None:
    """When the earliest pending delivery is due (epoch seconds, or its claim's end if later), passing over
    ``skip_hooks`` and ``skip_projects`` as :func:`claim_deliveries` does; None: none."""
    skip, skip_args = _skipping(skip_hooks, skip_projects)
    row = reading(source).execute(
        "SELECT min(CASE WHEN coalesce(o.claimed_until, 0) > o.next_attempt_at THEN o.claimed_until"
        " ELSE o.next_attempt_at END) FROM webhook_outbox o WHERE o.state = 'pending'" + skip, skip_args
    ).fetchone()
    return row[0]


def delivery_log(source, project_id: int, limit: int = 50, hook_id: int | None = None) -> list[dict]:
    """The project's latest deliveries, newest first, each with its attempts (oldest first)."""
    conn = reading(source)
    sql = ("SELECT id, hook_id, event, delivery_id, state, attempts, next_attempt_at, created_at"
           " FROM webhook_outbox WHERE project_id = ?")
    args: list = [project_id]
    if hook_id is not None:
        sql += " AND hook_id = ?"
        args.append(hook_id)
    rows = [dict(r) for r in conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))]
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["log"] = []
    for chunk, marks in in_chunks(list(by_id)):
        for a in conn.execute(
                f"SELECT outbox_id, attempt, status_code, error, duration_ms, at FROM webhook_attempts"
                f" WHERE outbox_id IN ({marks}) ORDER BY outbox_id, attempt", chunk):
            entry = dict(a)
            by_id[entry.pop("outbox_id")]["log"].append(entry)
    for r in rows:
        if r["state"] != "pending":
            r["next_attempt_at"] = None
    return rows

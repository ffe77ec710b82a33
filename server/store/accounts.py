"""Users, their roles, API tokens and login sessions (``users``, ``memberships``, ``tokens``)."""
from __future__ import annotations

from assay.errors import BadRequest, Conflict, NotFound

from .db import Database, is_unique_violation, reading

# The roles a membership may hold (the schema checks them too); what each may do is assay.web.auth's.
ROLES = ("owner", "reviewer", "annotator")


def create_user(db: Database, name: str, password_hash: str | None) -> int:
    with db.write() as conn:
        taken = Conflict(f"a user named {name!r} already exists")
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise taken
        try:
            return conn.execute("INSERT INTO users (name, password_hash) VALUES (?, ?)",
                                (name, password_hash)).lastrowid
        except Exception as exc:
            if is_unique_violation(exc):  # another process took the name since the check
                raise taken from exc
            raise


def get_user(source, key) -> dict:
    column = "id" if isinstance(key, int) else "name"
    row = reading(source).execute(f"SELECT * FROM users WHERE {column} = ?", (key,)).fetchone()
    if row is None:
        raise NotFound(f"no user {key!r}; `assay create-user` makes one")
    return dict(row)


def set_password(db: Database, user_id: int, password_hash: str) -> None:
    """A new password also ends the user's login sessions: whoever knew the old one may hold one."""
    with db.write() as conn:
        conn.execute("UPDATE users SET password_hash = ?, session_generation = session_generation + 1 WHERE id = ?",
                     (password_hash, user_id))


def end_sessions(db: Database, user_id: int) -> None:
    """Ends every login session of a user (API tokens are untouched): sessions carry the generation they began in."""
    with db.write() as conn:
        conn.execute("UPDATE users SET session_generation = session_generation + 1 WHERE id = ?", (user_id,))


def grant(db: Database, user_id: int, project_id: int | None, role: str) -> None:
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    with db.write() as conn:
        conn.execute("DELETE FROM memberships WHERE user_id = ? AND coalesce(project_id, 0) = ?",
                     (user_id, project_id or 0))
        conn.execute("INSERT INTO memberships (user_id, project_id, role) VALUES (?, ?, ?)",
                     (user_id, project_id, role))


def roles_of(source, user_id: int) -> dict:
    """{project_id or None: role} for a user; None means every project."""
    rows = reading(source).execute("SELECT project_id, role FROM memberships WHERE user_id = ?", (user_id,))
    return {r[0]: r[1] for r in rows}


def add_token(db: Database, user_id: int, token_hash: str, prefix: str) -> int:
    with db.write() as conn:
        return conn.execute("INSERT INTO tokens (user_id, token_hash, prefix) VALUES (?, ?, ?)",
                            (user_id, token_hash, prefix)).lastrowid


def user_for_token(source, token_hash: str) -> dict | None:
    row = reading(source).execute(
        "SELECT u.* FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        (token_hash,)).fetchone()
    return dict(row) if row else None


def list_tokens(source, user_id: int) -> list[dict]:
    return [dict(r) for r in reading(source).execute(
        "SELECT id, prefix, created_at, revoked_at FROM tokens WHERE user_id = ? ORDER BY id", (user_id,))]


def revoke_token(db: Database, token_id: int | None = None, prefix: str | None = None) -> int:
    with db.write() as conn:
        if token_id is not None:
            cur = conn.execute("UPDATE tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
                               " WHERE id = ? AND revoked_at IS NULL", (token_id,))
        else:
            cur = conn.execute("UPDATE tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
                               " WHERE prefix = ? AND revoked_at IS NULL", (prefix,))
        return cur.rowcount

"""Answers: labels, skips, imported labels and reviews (the ``annotations`` table)."""
from __future__ import annotations

import json
import time
from typing import Iterator

from assay.errors import Conflict, NotFound

from .db import Database, in_chunks, lock_project, reading


def insert_answer(conn, project_id, item_id, annotator, label, skipped, *, source="annotator",
                  duration_ms=None, idempotency_key=None) -> int:
    """Inside an open write: store one answer and keep the item's counters and the annotator's lease right."""
    # A second answer by the same annotator replaces the first: one live answer per (item, annotator).
    previous = conn.execute(
        "SELECT id, skipped FROM annotations WHERE item_id = ? AND annotator = ? AND undone_at IS NULL",
        (item_id, annotator),
    ).fetchone()
    if previous is not None:
        _retire(conn, previous["id"], item_id, bool(previous["skipped"]))
    cur = conn.execute(
        "INSERT INTO annotations (project_id, item_id, annotator, label, skipped, source, duration_ms,"
        " idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (project_id, item_id, annotator, None if skipped else json.dumps(label), int(skipped), source,
         duration_ms, idempotency_key),
    )
    column = "n_skips" if skipped else "n_labels"
    conn.execute(f"UPDATE items SET {column} = {column} + 1, n_done = n_done + 1 WHERE id = ?", (item_id,))
    conn.execute("DELETE FROM leases WHERE item_id = ? AND annotator = ?", (item_id, annotator))
    return cur.lastrowid


def _retire(conn, annotation_id: int, item_id: int, skipped: bool) -> None:
    conn.execute("UPDATE annotations SET undone_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?",
                 (annotation_id,))
    column = "n_skips" if skipped else "n_labels"
    conn.execute(f"UPDATE items SET {column} = {column} - 1, n_done = n_done - 1 WHERE id = ?", (item_id,))


def add_annotation(db: Database, project_id: int, item_id: int, annotator: str, label, skipped: bool,
                   duration_ms: int | None = None, idempotency_key: str | None = None,
                   source: str = "annotator", overlap: int | None = None,
                   twins: bool = False, suggested: str | None = None,
                   accepted: bool | None = None) -> tuple[dict, bool]:
    """Store one answer; returns (annotation, created). A repeated idempotency key returns the first.

    With ``twins``, the item's exact duplicates get the same answer in the same transaction, recorded with the
    source ``twin of item N`` (see _answer_twins); a skip gives them nothing and takes back earlier copies.

    With ``overlap`` given, an answer on an item that already has that many
    answers from others is refused (409): two annotators never both label an
    item unless the project asked for it (e.g. a late answer after a lease ran out).

    ``suggested``: the label the page suggested (None: none shown); ``accepted``: whether the annotator took it
    (the answer is the suggestion; issue 28: the suggestions' acceptance rate, and what may have anchored an answer).
    """
    with db.write() as conn:
        lock_project(conn, project_id)  # against a queue pull or answer of another process deciding on the same leases
        if idempotency_key is not None:
            row = conn.execute(
                "SELECT * FROM annotations WHERE project_id = ? AND annotator = ? AND idempotency_key = ?",
                (project_id, annotator, idempotency_key),
            ).fetchone()
            if row is not None:
                return _annotation_row(row), False
        item = conn.execute("SELECT n_done FROM items WHERE id = ? AND project_id = ?", (item_id, project_id)).fetchone()
        if item is None:
            raise NotFound(f"project {project_id} has no item {item_id}")
        if overlap is not None:
            _check_answer_slot(conn, item_id, annotator, item["n_done"], overlap)
        annotation_id = insert_answer(conn, project_id, item_id, annotator, label, skipped, source=source,
                                      duration_ms=duration_ms, idempotency_key=idempotency_key)
        if suggested is not None:
            conn.execute("UPDATE annotations SET suggested = ?, accepted = ? WHERE id = ?",
                         (suggested, None if accepted is None else int(bool(accepted)), annotation_id))
        if twins:
            _answer_twins(conn, project_id, item_id, annotator, None if skipped else label, overlap or 1)
        row = conn.execute("SELECT * FROM annotations WHERE id = ?", (annotation_id,)).fetchone()
        return _annotation_row(row), True


def twin_source(item_id: int) -> str:
    """The source of an answer copied from the item's twin (an exact duplicate) ``item_id``."""
    return f"twin of item {item_id}"


def _answer_twins(conn, project_id: int, item_id: int, annotator: str, label, overlap: int) -> None:
    """Inside an open write: ``annotator``'s copies of their answer on ``item_id`` on its twins go (a relabel, a
    skip, an undo), and with ``label`` (None: a skip or an undo) come again with it, source ``twin of item N``.

    A twin gets a copy while the annotator has no answer of their own on it, it has room for one more (fewer
    than ``overlap`` answers) and nobody else holds it on a lease: a twin someone labeled keeps its own label,
    and one in another annotator's hands is theirs to answer."""
    source = twin_source(item_id)
    for row in conn.execute("SELECT id, item_id, skipped FROM annotations WHERE project_id = ? AND annotator = ?"
                            " AND source = ? AND undone_at IS NULL", (project_id, annotator, source)).fetchall():
        _retire(conn, row["id"], row["item_id"], bool(row["skipped"]))
    if label is None:
        return
    twins = conn.execute(
        "SELECT t.id, t.n_done FROM items i JOIN items t ON t.project_id = i.project_id"
        " AND t.content_hash = i.content_hash WHERE i.id = ? AND t.id != i.id ORDER BY t.id", (item_id,)).fetchall()
    for twin_id, n_done in twins:
        mine = conn.execute("SELECT 1 FROM annotations WHERE item_id = ? AND annotator = ? AND undone_at IS NULL"
                            " UNION ALL SELECT 1 FROM leases WHERE item_id = ? AND annotator != ? AND expires_at > ?",
                            (twin_id, annotator, twin_id, annotator, time.time())).fetchone()
        if mine is None and n_done < overlap:
            insert_answer(conn, project_id, twin_id, annotator, label, False, source=source)


def label_new_twins(conn, project_id: int, hashes) -> int:
    """Inside an import's open write: where items just imported (their content ``hashes``) are twins of a labeled
    item, the group's unanswered items get that label, as add_annotation's ``twins`` gives it: the latest
    own (not copied) label of the group, recorded as ``twin of item N`` under its annotator. Covers both an
    unlabeled copy of a labeled item and a seed label (``--label-column``) on a copy of unlabeled ones.
    Returns how many copies were given."""
    given = 0
    for chunk, marks in in_chunks(sorted(set(h for h in hashes if h is not None))):
        labeled = [r[0] for r in conn.execute(
            f"SELECT DISTINCT content_hash FROM items WHERE project_id = ? AND n_labels > 0"
            f" AND content_hash IN ({marks})", (project_id, *chunk)).fetchall()]
        for digest in labeled:
            group = conn.execute("SELECT id, n_done FROM items WHERE project_id = ? AND content_hash = ? ORDER BY id",
                                 (project_id, digest)).fetchall()
            unanswered = [item_id for item_id, n_done in group if n_done == 0]
            if not unanswered:
                continue
            source = conn.execute(
                "SELECT a.item_id, a.annotator, a.label FROM annotations a JOIN items i ON i.id = a.item_id"
                " WHERE i.project_id = ? AND i.content_hash = ? AND a.undone_at IS NULL AND a.skipped = 0"
                " AND a.source NOT LIKE 'twin of item %' ORDER BY a.id DESC LIMIT 1",
                (project_id, digest)).fetchone()
            if source is None:
                continue
            for item_id in unanswered:
                insert_answer(conn, project_id, item_id, source[1], json.loads(source[2]), False,
                              source=twin_source(source[0]))
                given += 1
    return given


def _check_answer_slot(conn, item_id: int, annotator: str, n_done: int, overlap: int) -> None:
    """Refuse (409) an answer that would take a place others hold: answered, or leased to them.

    An annotator who already answered the item, or holds a live lease on it,
    always may (again). Reviewers settle disagreements through review, not here.
    """
    mine = conn.execute(
        "SELECT 1 FROM annotations WHERE item_id = ? AND annotator = ? AND undone_at IS NULL"
        " UNION ALL SELECT 1 FROM leases WHERE item_id = ? AND annotator = ? AND expires_at > ?",
        (item_id, annotator, item_id, annotator, time.time()),
    ).fetchone()
    if mine is not None:
        return
    if n_done >= overlap:
        raise Conflict(f"item {item_id} already has the {overlap} answer(s) this project wants "
                       f"(overlap {overlap}), probably given after your lease on it ran out; "
                       "your answer was not stored")
    leased = conn.execute("SELECT count(*) FROM leases WHERE item_id = ? AND annotator != ? AND expires_at > ?",
                          (item_id, annotator, time.time())).fetchone()[0]
    if n_done + leased >= overlap:
        raise Conflict(f"item {item_id} is reserved for another annotator (it is in their queue); your answer "
                       "was not stored. Answer the items your own queue pull returned")


def answer_refusal(source, project_id: int, item_id: int, annotator: str, overlap: int) -> str | None:
    """Why ``annotator`` may not answer the item now (add_annotation would refuse it, 409), or None if they may."""
    conn = reading(source)
    item = conn.execute("SELECT n_done FROM items WHERE id = ? AND project_id = ?", (item_id, project_id)).fetchone()
    if item is None:
        raise NotFound(f"project {project_id} has no item {item_id}")
    try:
        _check_answer_slot(conn, item_id, annotator, item["n_done"], overlap)
    except Conflict as exc:
        return exc.message
    return None


def undo_annotation(db: Database, project_id: int, item_id: int, annotator: str, twins: bool = False) -> dict:
    """Retire ``annotator``'s live answer on the item; with ``twins``, also the copies it gave the item's twins
    (they go back to the pool)."""
    with db.write() as conn:
        lock_project(conn, project_id)
        row = conn.execute(
            "SELECT * FROM annotations WHERE project_id = ? AND item_id = ? AND annotator = ? AND undone_at IS NULL",
            (project_id, item_id, annotator),
        ).fetchone()
        if row is None:
            raise NotFound(f"{annotator!r} has no label on item {item_id} to undo")
        _retire(conn, row["id"], item_id, bool(row["skipped"]))
        if twins:
            _answer_twins(conn, project_id, item_id, annotator, None, 1)
        return _annotation_row(row)


def _annotation_row(row) -> dict:
    ann = dict(row)
    ann["label"] = json.loads(ann["label"]) if ann["label"] is not None else None
    ann["skipped"] = bool(ann["skipped"])
    return ann


def _live_answers(conn, project_id: int, after_item: int, limit_items: int) -> list[tuple[int, list[dict]]]:
    """Live, non-skipped answers of the next ``limit_items`` labeled items after ``after_item``, oldest first.

    ``+project_id`` keeps SQLite off the items_pool index, which would read and sort all the project's items
    for every page (an export quadratic in the project's size); the id range is read in order instead.
    """
    rows = conn.execute(
        """
        SELECT a.item_id, a.label, a.annotator, a.source, a.created_at, a.suggested, a.accepted FROM annotations a
        WHERE a.item_id IN (SELECT id FROM items WHERE +project_id = ? AND id > ? AND n_labels > 0
                            ORDER BY id LIMIT ?)
          AND a.undone_at IS NULL AND a.skipped = 0
        ORDER BY a.item_id, a.id
        """,
        (project_id, after_item, limit_items),
    ).fetchall()
    grouped: dict[int, list[dict]] = {}
    for r in rows:
        grouped.setdefault(r[0], []).append(
            {"label": json.loads(r[1]), "annotator": r[2], "source": r[3], "created_at": r[4],
             "suggested": r[5], "accepted": None if r[6] is None else bool(r[6])})
    return list(grouped.items())


def answer_pages(source, project_id: int, page: int = 2000) -> Iterator[list[tuple[int, list[dict]]]]:
    """The live, non-skipped answers of every labeled item, ``page`` items at a time in id order:
    lists of (item_id, answers oldest first), each answer ``{label, annotator, source, created_at}``."""
    conn = reading(source)
    last = 0
    while True:
        groups = _live_answers(conn, project_id, last, page)
        if not groups:
            return
        yield groups
        last = groups[-1][0]


def agreement_units(source, project_id: int) -> dict[int, dict[str, object]]:
    """{item_id: {annotator: value}} over annotators' own answers (not imports or reviews)."""
    rows = reading(source).execute(
        "SELECT item_id, annotator, label FROM annotations WHERE project_id = ? AND undone_at IS NULL"
        " AND skipped = 0 AND source = 'annotator' ORDER BY id", (project_id,))
    units: dict[int, dict] = {}
    for item_id, annotator, label in rows:
        value = json.loads(label)
        units.setdefault(item_id, {})[annotator] = tuple(value) if isinstance(value, list) else value
    return units


def item_answers(source, project_id: int, item_ids: list[int]) -> dict[int, list[dict]]:
    conn = reading(source)
    out: dict[int, list[dict]] = {i: [] for i in item_ids}
    for chunk, marks in in_chunks(item_ids):
        for r in conn.execute(
                f"SELECT item_id, annotator, label, source, created_at, suggested, accepted FROM annotations"
                f" WHERE project_id = ? AND item_id IN ({marks}) AND undone_at IS NULL AND skipped = 0 ORDER BY id",
                (project_id, *chunk)):
            out[r[0]].append({"annotator": r[1], "label": json.loads(r[2]), "source": r[3], "created_at": r[4],
                              "suggested": r[5], "accepted": None if r[6] is None else bool(r[6])})
    return out


def suggestion_counts(source, project_id: int) -> tuple[int, int]:
    """(live labels given with a suggestion shown, of them the suggestion itself)."""
    row = reading(source).execute(
        "SELECT count(*), coalesce(sum(accepted), 0) FROM annotations WHERE project_id = ? AND undone_at IS NULL"
        " AND skipped = 0 AND suggested IS NOT NULL AND source = 'annotator'", (project_id,)).fetchone()
    return int(row[0]), int(row[1])


def annotator_counts(source, project_id: int) -> dict:
    rows = reading(source).execute(
        "SELECT annotator, count(*) FROM annotations WHERE project_id = ? AND undone_at IS NULL AND skipped = 0"
        " GROUP BY annotator", (project_id,))
    return {r[0]: r[1] for r in rows}

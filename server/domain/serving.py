"""Which items an annotator is served next, and the leases that keep them theirs meanwhile."""
from __future__ import annotations

import random
import time

from assay import store


def pull_queue(db, project: dict, annotator: str, n: int, lease_seconds: float) -> list[dict]:
    """The next ``n`` items for ``annotator``, leased to them so nobody else gets them.

    Order: items already leased to this annotator (a reload gets the same ones
    back), then the strategy's queue by rank, then random unlabeled items so the
    queue never runs dry while a retrain is under way.

    Of a group of twins (exact duplicates, store.content_hash) one is out at a time: an item is passed over
    while a twin of it is on anyone's lease or already in this pull. Labeling it labels its twins
    (store.add_annotation's ``twins``), so the others are never served unless that label is taken back.
    """
    project_id = project["id"]
    overlap = int(project.get("overlap") or 1)
    now = time.time()
    with db.write() as tx:
        store.expire_leases(tx, project_id, now)
        picked = [dict(p, leased=True) for p in store.leased_items(tx, project_id, annotator, overlap, n)]
        seen = {p["item_id"] for p in picked}
        twins = _Twins(tx, project_id, now)  # the leased items picked above are on its leases already
        if len(picked) < n:
            limit = n + len(seen)
            while True:
                rows = store.queued_items(tx, project_id, annotator, overlap, now, limit)
                free = twins.free([r["item_id"] for r in rows if r["item_id"] not in seen])
                for row in rows:
                    if row["item_id"] in free and len(picked) < n and twins.take([row["item_id"]]):
                        picked.append(row)
                        seen.add(row["item_id"])
                if len(picked) >= n or len(rows) < limit:
                    break
                limit *= 4  # twins were passed over: read further down the queue
        if len(picked) < n:
            for item_id, prob in _random_fill(tx, project_id, annotator, overlap, now, n - len(picked), seen, twins):
                picked.append({"item_id": item_id, "score": None, "strategy": "random", "model_version": None,
                               "prediction": None, "selection_prob": prob})
                seen.add(item_id)
        store.lease_items(tx, project_id, annotator, [p["item_id"] for p in picked], now + lease_seconds)
        store.record_served(tx, project_id, picked)
        store.record_servings(tx, project_id, annotator, picked)
        data = store.item_data(tx, [p["item_id"] for p in picked])
        shares = store.version_shares(tx, project_id, {p["model_version"] for p in picked} - {None})
    return [{"id": p["item_id"], "data": data[p["item_id"]], "prediction": p.get("prediction"),
             "score": p.get("score"), "strategy": p.get("strategy") or "random",
             "model_version": p.get("model_version"),
             # What the ranking saw: "ranked among 2,000 of 100,000 items" while the pool is being featurized.
             **shares.get(p.get("model_version"), {"ranked_among": None, "pool_size": None})} for p in picked]


class _Twins:
    """Which items a pull may still hand out, twin-wise: none whose twin is leased to anyone or already picked."""

    def __init__(self, tx, project_id: int, now: float):
        self.tx = tx
        self.holders = store.leased_hashes(tx, project_id, now)  # content hash -> the items out on a lease
        self.hashes: dict[int, str | None] = {}

    def free(self, item_ids: list[int]) -> set[int]:
        """Those of ``item_ids`` no twin of which is out (on a lease, or taken by this pull)."""
        self.hashes.update(store.content_hashes(self.tx, [i for i in item_ids if i not in self.hashes]))
        return {i for i in item_ids if self.hashes.get(i) is None or self.holders.get(self.hashes[i], {i}) == {i}}

    def take(self, item_ids) -> bool:
        """Mark ``item_ids`` as handed out; False (taking none) when one of them has a twin out already."""
        item_ids = list(item_ids)
        if len(self.free(item_ids)) < len(item_ids):
            return False
        for i in item_ids:
            if self.hashes.get(i) is not None:
                self.holders.setdefault(self.hashes[i], set()).add(i)
        return True


def _random_fill(tx, project_id, annotator, overlap, now, want, exclude, twins=None) -> list[tuple[int, float | None]]:
    """(item_id, selection probability) of items beyond the queue: first those other annotators started
    (overlap > 1; None, as they were picked for the first annotator), then random fresh ones.

    Fresh items come from a range scan of the shuffle index from a random
    start, wrapping once, so a random pick costs an index lookup, not a sort.
    The shuffle keys are uniform, so each of the N open items is taken with
    probability k/N on average when k are drawn.
    """
    found: list[int] = []
    if overlap > 1:
        started = store.started_items(tx, project_id, annotator, overlap, now, want + len(exclude))
        found = []
        for i in started:
            if i not in exclude and len(found) < want and (twins is None or twins.take([i])):
                found.append(i)
    n_started = len(found)
    start = random.randrange(store.SHUFFLE_RANGE)
    for lo, hi in ((start, store.SHUFFLE_RANGE), (0, start)):
        cursor = lo
        while len(found) < want:
            rows = store.fresh_items(tx, project_id, annotator, overlap, now, cursor, hi, 4 * want + 8)
            if not rows:
                break
            if twins is not None:
                twins.free([item_id for item_id, _ in rows])  # one look-up for the rows' hashes
            for item_id, _ in rows:
                if item_id not in exclude and item_id not in found and len(found) < want \
                        and (twins is None or twins.take([item_id])):
                    found.append(item_id)
            cursor = rows[-1][1] + 1
        if len(found) >= want:
            break
    n_fresh = len(found) - n_started
    # Those nobody answered, less the ones this pull already took from the queue (an approximation: items
    # other annotators hold on lease are not drawn either).
    open_items = max(store.counts(tx, project_id)["unlabeled"] - len(exclude), n_fresh)
    prob = min(1.0, n_fresh / open_items) if open_items else None
    return [(i, None) for i in found[:n_started]] + [(i, prob) for i in found[n_started:]]

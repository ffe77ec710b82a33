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
    """
    project_id = project["id"]
    overlap = int(project.get("overlap") or 1)
    now = time.time()
    with db.write() as tx:
        store.expire_leases(tx, project_id, now)
        picked = [dict(p, leased=True) for p in store.leased_items(tx, project_id, annotator, overlap, n)]
        seen = {p["item_id"] for p in picked}
        if len(picked) < n:
            for row in store.queued_items(tx, project_id, annotator, overlap, now, n + len(seen)):
                if row["item_id"] not in seen and len(picked) < n:
                    picked.append(row)
                    seen.add(row["item_id"])
        if len(picked) < n:
            for item_id, prob in _random_fill(tx, project_id, annotator, overlap, now, n - len(picked), seen):
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


def _random_fill(tx, project_id, annotator, overlap, now, want, exclude) -> list[tuple[int, float | None]]:
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
        found = [i for i in started if i not in exclude][:want]
    n_started = len(found)
    start = random.randrange(store.SHUFFLE_RANGE)
    for lo, hi in ((start, store.SHUFFLE_RANGE), (0, start)):
        cursor = lo
        while len(found) < want:
            rows = store.fresh_items(tx, project_id, annotator, overlap, now, cursor, hi, 4 * want + 8)
            if not rows:
                break
            for item_id, _ in rows:
                if item_id not in exclude and item_id not in found and len(found) < want:
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

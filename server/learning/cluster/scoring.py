"""Scoring a sharded pool on a Dask cluster and merging what the shards send back.

Each task reads one shard, runs the fitted model (scattered to the workers once), scores its rows and
returns only candidates: never the shard. The driver's merge then gives

- top-k strategies (least_confidence, margin, entropy): the pool-wide top-k, exact, ties by index as
  ``registry._top_k``: every pool-wide top-k item is in its own shard's top-k;
- power_* and softmax_*: exactly ``stochastic_batch``'s picks for the same Generator. Its noise is
  ``rng.gumbel(size=N)``, one PCG64 draw per item, so a shard starting at row ``s`` reproduces its slice by
  advancing a copy of the Generator's state ``s`` steps; the driver then advances the Generator ``N`` steps,
  leaving it where one process would (:func:`assay.strategies.stochastic.shard_candidates`);
- softrank_*: exact too, but its weights are pool-wide ranks, so the shards send their scores (8 bytes an
  item, not the D features) and the driver draws as one process does;
- dpp: approximate: a shortlist of the ``SHORTLIST`` items (at least 4 batches) of highest DPP quality,
  pool-wide, on which the driver runs the exact DPP.

Each strategy declares its form (``Strategy.on_cluster``: CLUSTER_BY_SCORE for the first three kinds,
CLUSTER_SHORTLIST for dpp) and the per-item scores the shards compute (``scorer``, ``beyond_scorer``).
BALD-type scores, BatchBALD, influence and the diversity strategies (typiclust, probcover, coreset, badge)
declare none and are not sent (:func:`supports`): they run in one process as before. Their cluster form would
be a shortlist like dpp's (by BALD for BatchBALD; a uniform Gumbel sample for the diversity ones).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from assay.evaluation.temperature import first_guesses
from assay.models import capabilities
from assay.strategies import CLUSTER_BY_SCORE, CLUSTER_SHORTLIST, EMBEDDINGS, ModelOutputs, stochastic
from assay.strategies.registry import _top_k

from .shards import read_shard, shard_rows, write_shards

SHORTLIST = 2_000


class ClusterUnsupported(ValueError):
    """The strategy has no cluster form; the caller scores in one process."""


def supports(strategy) -> bool:
    """Whether the strategy declares a cluster form."""
    return strategy.on_cluster in (CLUSTER_BY_SCORE, CLUSTER_SHORTLIST)


@dataclass
class ClusterSelection:
    indices: np.ndarray
    scores: np.ndarray
    probs_B_C: np.ndarray
    more_indices: np.ndarray
    more_scores: np.ndarray
    more_probs: np.ndarray | None
    more_strategy: str
    pool_pred_N: np.ndarray | None = None
    pool_top_N_K: np.ndarray | None = None


def _plan(strategy, batch_size: int, depth: int) -> dict:
    """What each shard task is sent: the strategy's per-item scores (module-level functions of the outputs,
    pickled by reference) and how its batch is drawn, never the strategy's name."""
    shortlist = strategy.on_cluster == CLUSTER_SHORTLIST
    return {"scorer": strategy.scorer,
            # The queue beyond the batch ranks by the batch's own score, or (dpp) by another one.
            "beyond_scorer": None if strategy.by_score else strategy.beyond_scorer,
            "mode": strategy.params.get("mode"),
            "beta": float(strategy.params.get("beta", 1.0)), "batch": int(batch_size),
            "depth": max(int(depth), int(batch_size)),
            "shortlist": max(SHORTLIST, 4 * int(batch_size)) if shortlist else 0}


def _scores(scorer, probs_n_C: np.ndarray) -> np.ndarray:
    return np.asarray(scorer(ModelOutputs(probs_N_C=probs_n_C)), dtype=np.float64)


def _shard_task(path: str, start: int, model, plan: dict, rng_state: dict | None, top_class: bool) -> dict:
    """One shard's candidates, with global row numbers (``start`` + position)."""
    _, X = read_shard(path)
    probs = model.predict_proba(X)
    scores = _scores(plan["scorer"], probs)
    out = {"n": len(X)}
    # The ranking beyond the batch (and the batch of a top-k strategy): the shard's best by its score; dpp's
    # queue beyond the batch ranks by its declared beyond score (margin), as acquire._deep_scores does.
    deep = scores if plan["beyond_scorer"] is None else _scores(plan["beyond_scorer"], probs)
    top = _top_k(deep, min(plan["depth"], len(X)))
    out["top"] = (start + top, deep[top], probs[top])
    if plan["shortlist"]:
        best = _top_k(scores, min(plan["shortlist"], len(X)))
        out["shortlist"] = (start + best, scores[best], probs[best], X[best])
    if plan["mode"] in ("power", "softmax"):
        bit_generator = getattr(np.random, rng_state["bit_generator"])()
        bit_generator.state = rng_state
        bit_generator.advance(start)
        gumbel = np.random.Generator(bit_generator).gumbel(size=len(X))
        part = stochastic.shard_candidates(scores, gumbel, plan["batch"], plan["mode"], plan["beta"])
        part["index"] = start + part["index"]
        part["fill_index"] = start + part["fill_index"]
        part["probs"] = probs[part["index"] - start]
        part["fill_probs"] = probs[part["fill_index"] - start]
        part["scores"] = scores[part["index"] - start]
        part["fill_scores"] = scores[part["fill_index"] - start]
        out["keys"] = part
    elif plan["mode"] == "softrank":
        out["scores"] = scores
    if top_class:
        pred = np.argmax(probs, axis=1)
        out["pred"], out["guesses"] = pred, first_guesses(probs)
    return out


def _rows_task(path: str, start: int, model, rows: np.ndarray) -> np.ndarray:
    _, X = read_shard(path)
    return model.predict_proba(X[rows - start])


def _advance(rng: np.random.Generator, steps: int) -> None:
    """Move ``rng`` as ``rng.gumbel(size=steps)`` would (one draw an item), keeping its buffered 32 bits."""
    state = rng.bit_generator.state
    if not hasattr(rng.bit_generator, "advance") or state["bit_generator"] not in ("PCG64", "PCG64DXSM"):
        raise ClusterUnsupported(f"the stochastic strategies need a PCG64 Generator on a cluster, "
                                 f"got {state['bit_generator']}")
    copy = type(rng.bit_generator)()
    copy.state = state
    copy.advance(steps)
    moved = copy.state
    moved["has_uint32"], moved["uinteger"] = state["has_uint32"], state["uinteger"]
    rng.bit_generator.state = moved


def _merge_top(parts, k: int, exclude=()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = np.concatenate([p["top"][0] for p in parts]).astype(np.intp)
    scores = np.concatenate([p["top"][1] for p in parts]).astype(np.float64)
    probs = np.concatenate([p["top"][2] for p in parts])
    scores = np.where(np.isnan(scores), -np.inf, scores)
    if len(exclude):
        scores[np.isin(index, exclude)] = -np.inf
        k = min(k, len(index) - int(np.isin(index, exclude).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0), probs[:0]
    order = np.lexsort((index, -scores))[:k]
    return index[order], scores[order], probs[order]


def select_on_cluster(client, paths: list[str], model, strategy, batch_size: int, rng: np.random.Generator, *,
                      depth: int = 0, top_class: bool = False) -> ClusterSelection:
    """The batch ``strategy.select`` would pick from the whole pool (see the module docstring for what is exact),
    the queue beyond it up to ``depth``, and optionally each row's predicted class and its probability."""
    if not supports(strategy):
        raise ClusterUnsupported(f"strategy {strategy.name!r} has no cluster form")
    rows = shard_rows(paths)
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(int).tolist()
    n = int(sum(rows))
    plan = _plan(strategy, batch_size, depth)
    rng_state = None
    if plan["mode"] in ("power", "softmax"):
        rng_state = rng.bit_generator.state
        _advance(rng, n)
    # hash=False: a fresh key per call, so a previous call releasing its copy cannot take this one away.
    [model_future] = client.scatter([model], broadcast=True, hash=False)
    futures = [client.submit(_shard_task, path, start, model_future, plan, rng_state, top_class, pure=False)
               for path, start in zip(paths, starts)]
    parts = client.gather(futures)
    del futures
    if plan["mode"] in ("power", "softmax"):
        keys = [p["keys"] for p in parts]
        indices = stochastic.merge_candidates(keys, batch_size, plan["mode"], plan["beta"])
        seen = {}
        for p in keys:
            for field_index, field_probs, field_scores in (("index", "probs", "scores"),
                                                           ("fill_index", "fill_probs", "fill_scores")):
                for i, pr, s in zip(p[field_index], p[field_probs], p[field_scores]):
                    seen[int(i)] = (pr, s)
        probs = np.array([seen[int(i)][0] for i in indices])
        scores = np.array([seen[int(i)][1] for i in indices], dtype=float)
    elif plan["mode"] == "softrank":
        all_scores = np.concatenate([p["scores"] for p in parts])
        indices = stochastic.stochastic_batch(all_scores, batch_size, mode="softrank", beta=plan["beta"],
                                              random_state=rng).astype(np.intp)
        scores = all_scores[indices]
        del all_scores
        probs = _probs_of(client, paths, starts, rows, model_future, indices)
    elif plan["shortlist"]:
        index = np.concatenate([p["shortlist"][0] for p in parts]).astype(np.intp)
        quality = np.concatenate([p["shortlist"][1] for p in parts])
        order = np.lexsort((index, -quality))[:plan["shortlist"]]
        probs_M = np.concatenate([p["shortlist"][2] for p in parts])[order]
        X_M = np.concatenate([p["shortlist"][3] for p in parts])[order]
        embeddings = model.embed(X_M) if EMBEDDINGS in capabilities(model) else X_M
        picked = strategy.select(ModelOutputs(probs_N_C=probs_M, embeddings_N_D=embeddings), batch_size,
                                 random_state=rng)
        indices, scores, probs = index[order][picked.indices], picked.scores, probs_M[picked.indices]
    else:
        indices, scores, probs = _merge_top(parts, batch_size)
    result = ClusterSelection(np.asarray(indices, dtype=np.intp), np.asarray(scores, dtype=float), probs,
                              np.zeros(0, dtype=np.intp), np.zeros(0), None, "")
    if depth > batch_size:
        result.more_indices, result.more_scores, result.more_probs = _merge_top(parts, depth - batch_size,
                                                                                exclude=result.indices)
        result.more_strategy = strategy.beyond_label
    if top_class:
        result.pool_pred_N = np.concatenate([p["pred"] for p in parts])
        result.pool_top_N_K = np.concatenate([p["guesses"] for p in parts])
    return result


def _probs_of(client, paths, starts, rows, model_future, indices) -> np.ndarray:
    """The model's probabilities for a few pool rows, read back from their shards."""
    order = np.argsort(indices, kind="stable")
    sorted_idx = indices[order]
    bounds = np.searchsorted(sorted_idx, np.asarray(starts + [int(sum(rows))]))
    futures = [client.submit(_rows_task, path, start, model_future, sorted_idx[lo:hi], pure=False)
               for path, start, lo, hi in zip(paths, starts, bounds[:-1], bounds[1:]) if hi > lo]
    probs_sorted = np.concatenate(client.gather(futures))
    probs = np.empty_like(probs_sorted)
    probs[order] = probs_sorted
    return probs


def cluster_round(client, X_pool, model, strategy, batch_size: int, rng, *, depth: int = 0,
                  rows_per_shard: int | None = None) -> ClusterSelection:
    """The retrain's and the simulator's entry: write the in-memory pool as shards (under ``ASSAY_CLUSTER_DIR``,
    which a remote cluster's workers must see), score them on the cluster, remove them."""
    rows = rows_per_shard or max(1, -(-len(X_pool) // max(_n_workers(client) * 2, 1)))
    with tempfile.TemporaryDirectory(prefix="assay-pool-", dir=os.environ.get("ASSAY_CLUSTER_DIR") or None) as folder:
        paths = write_shards(X_pool, np.arange(len(X_pool)), folder, rows_per_shard=rows)
        return select_on_cluster(client, paths, model, strategy, batch_size, rng, depth=depth, top_class=True)


def _n_workers(client) -> int:
    try:
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:  # noqa: BLE001 - only a hint for the shard size
        return 2

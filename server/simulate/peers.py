"""Peer libraries' strategies, run on the model the round already fitted.

``--peers`` adds these to a simulation so ours can be compared with theirs in
the same harness: same splits, seeds, initial sets, model fits and outputs.
Only the selection differs, and it is the peer's own code:

* modAL (``modAL.uncertainty``): ``uncertainty_sampling``, ``margin_sampling``,
  ``entropy_sampling``. They call ``classifier.predict_proba``, so they get a
  thin wrapper around the already-fitted model (modAL's learners are not used:
  their ``fit`` breaks on scikit-learn >= 1.8).
* BaaL: ``baal.active.heuristics.BALD`` and ``baal.active.heuristics.aliases.PowerBALD``
  (power sampling over BALD, temperature 1) on the model's
  posterior samples, reshaped to BaaL's ``[N, C, K]``. BaaL's stochastic
  heuristics draw from numpy's global RNG; it is seeded from the round's
  generator for the call and restored after, so runs stay reproducible.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from assay.strategies import PROBS, SAMPLES


@dataclass(frozen=True)
class Peer:
    name: str
    library: str  # the importable module, e.g. "modAL.uncertainty"
    function: str
    needs: frozenset
    # Our registry strategy it corresponds to. A peer run draws its round seeds from that
    # strategy's stream, so each round's model fit (posterior samples included) is the one
    # its counterpart gets, and only the selection code differs.
    counterpart: str
    description: str


PEERS = {
    "modal_uncertainty": Peer("modal_uncertainty", "modAL.uncertainty", "uncertainty_sampling",
                              frozenset({PROBS}), "least_confidence", "modAL least-confidence top-k"),
    "modal_margin": Peer("modal_margin", "modAL.uncertainty", "margin_sampling", frozenset({PROBS}), "margin",
                         "modAL smallest-margin top-k"),
    "modal_entropy": Peer("modal_entropy", "modAL.uncertainty", "entropy_sampling", frozenset({PROBS}), "entropy",
                          "modAL entropy top-k"),
    "baal_bald": Peer("baal_bald", "baal.active.heuristics", "BALD", frozenset({SAMPLES}), "bald",
                      "BaaL BALD top-k"),
    "baal_powerbald": Peer("baal_powerbald", "baal.active.heuristics.aliases", "PowerBALD", frozenset({SAMPLES}),
                           "power_bald", "BaaL PowerBALD (power sampling, temperature 1)"),
}


def unavailable_reason(name: str) -> str | None:
    """None when the peer's library imports, else why not."""
    peer = PEERS[name]
    try:
        getattr(importlib.import_module(peer.library), peer.function)
    except (ImportError, AttributeError) as exc:
        return f"{peer.library}.{peer.function} is not importable ({type(exc).__name__}: {exc})"
    except Exception as exc:  # noqa: BLE001 - a broken optional install must not stop the run
        return f"{peer.library} failed to import ({type(exc).__name__}: {exc})"
    return None


class FittedClassifier:
    """What modAL's query functions need from a classifier: ``predict_proba`` of a model fitted elsewhere."""

    def __init__(self, model):
        self.model = model

    def predict_proba(self, X):
        return self.model.predict_proba(X)


def select(name: str, model, X_pool, batch_size: int, rng: np.random.Generator, k_samples: int) -> np.ndarray:
    """The peer's batch of ``batch_size`` pool positions for ``model`` (already fitted)."""
    peer = PEERS[name]
    fn = getattr(importlib.import_module(peer.library), peer.function)
    if peer.library.startswith("modAL"):
        indices, _ = fn(FittedClassifier(model), X_pool, n_instances=int(batch_size))
        return np.asarray(indices, dtype=np.intp)
    probs_N_C_K = np.ascontiguousarray(
        np.transpose(np.asarray(model.predict_proba_samples(X_pool, k_samples), dtype=np.float64), (0, 2, 1)))
    if peer.function == "BALD":
        ranks = fn()(probs_N_C_K)
        return np.asarray(ranks[:batch_size], dtype=np.intp)
    saved = np.random.get_state()
    np.random.seed(int(rng.integers(2**32)))
    try:
        # Not heuristic(probs): BaaL 2.1's __call__ passes StochasticHeuristic.get_ranks an argument it
        # does not take. get_ranks returns (indices, sampling distribution).
        indices, _ = fn(query_size=int(batch_size)).get_ranks(probs_N_C_K)
    finally:
        np.random.set_state(saved)
    return np.asarray(indices, dtype=np.intp)

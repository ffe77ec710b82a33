"""Named strategies: what each needs from a model and how it picks a batch.

The server and the simulator never call the scoring functions directly; they
ask the registry for a strategy by name, hand it a :class:`ModelOutputs` filled
with what ``strategy.needs`` lists, and get a :class:`Selection` back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import bald as _bald
from . import dpp as _dpp
from . import influence as _influence
from . import small_budget as _small
from . import stochastic as _stochastic
from . import uncertainty as _uncertainty
from ._checks import StrategyInputError, as_rng, check_batch

# What a strategy can ask a model for.
PROBS = "probs"  # predict_proba(X_pool): probs_N_C
SAMPLES = "samples"  # predict_proba_samples(X_pool, k): probs_N_K_C
EMBEDDINGS = "embeddings"  # embed(X_pool) or the item features: embeddings_N_D
LINEAR_HEAD = "linear_head"  # W, head features of train / held-out / pool items, l2
CAPABILITIES = (PROBS, SAMPLES, EMBEDDINGS, LINEAR_HEAD)
# Not a capability of the model's pool outputs: the labeled items' embeddings, which a
# strategy lists in ``uses`` to see what is already covered (coreset, typiclust, probcover).
LABELED_EMBEDDINGS = "labeled_embeddings"


@dataclass(frozen=True)
class LinearHead:
    """A multinomial logistic head ``softmax(W x)`` fitted on ``sum CE + l2/2 ||W||^2``.

    ``X_*`` are the features the head acts on (a constant column included when
    the model has a bias). The validation rows must be labeled items the head was
    not fitted on: at the optimum the training gradient is only the regularizer's.
    """

    W_C_D: np.ndarray
    X_train_N_D: np.ndarray
    y_train_N: np.ndarray
    X_val_M_D: np.ndarray
    y_val_M: np.ndarray
    X_pool_P_D: np.ndarray
    l2: float


@dataclass
class ModelOutputs:
    """Everything a model said about the unlabeled pool, one row per pool item."""

    probs_N_C: np.ndarray | None = None
    probs_N_K_C: np.ndarray | None = None
    embeddings_N_D: np.ndarray | None = None
    # One head, or several cross-fitted ones (each validated on labels the others trained on).
    head: LinearHead | tuple[LinearHead, ...] | None = None
    pool_size: int | None = None
    # Embeddings of the already labeled items (L rows, same columns as embeddings_N_D): not pool rows.
    labeled_embeddings_L_D: np.ndarray | None = None

    def __post_init__(self):
        sizes = {
            name: len(arr)
            for name, arr in (
                ("probs_N_C", self.probs_N_C),
                ("probs_N_K_C", self.probs_N_K_C),
                ("embeddings_N_D", self.embeddings_N_D),
                *((f"head[{i}].X_pool_P_D", h.X_pool_P_D) for i, h in enumerate(self.heads())),
            )
            if arr is not None
        }
        if self.pool_size is not None:
            sizes["pool_size"] = int(self.pool_size)
        if len(set(sizes.values())) > 1:
            raise StrategyInputError(f"model outputs disagree on the pool size: {sizes}")
        self.pool_size = next(iter(sizes.values()), None)

    def heads(self) -> tuple[LinearHead, ...]:
        """The linear heads, as a tuple (empty without one)."""
        if self.head is None:
            return ()
        return tuple(self.head) if isinstance(self.head, (tuple, list)) else (self.head,)

    def available(self) -> frozenset[str]:
        have = set()
        if self.probs_N_C is not None:
            have.add(PROBS)
        if self.probs_N_K_C is not None:
            have.add(SAMPLES)
        if self.embeddings_N_D is not None:
            have.add(EMBEDDINGS)
        if self.head is not None:
            have.add(LINEAR_HEAD)
        return frozenset(have)


@dataclass(frozen=True)
class Selection:
    """A batch, best first, with the score each chosen item had (for display)."""

    indices: np.ndarray
    scores: np.ndarray
    strategy: str = ""


@dataclass
class Strategy:
    """A named way of choosing a batch.

    ``needs`` must all be present in the outputs; ``uses`` are taken when present.
    ``cold_start`` says what to do before any model exists: "random",
    "diversity" (a DPP over the item features), or the name of a strategy that
    needs embeddings only, run on the item features.
    """

    name: str
    needs: frozenset[str]
    run: Callable[..., tuple[np.ndarray, np.ndarray]]
    uses: frozenset[str] = frozenset()
    cold_start: str = "random"
    params: dict = field(default_factory=dict)
    description: str = ""
    scorer: Callable[["ModelOutputs"], np.ndarray] | None = None
    # True when the batch is a function of the per-item scores alone (top-k or
    # stochastic over them), so scores combined elsewhere can be selected from (multi-label
    # projects sum them over labels; a deep queue ranks the pool by them). `default` has a
    # per-item score for those uses too: its second phase's.
    by_score: bool = False
    # The name of that per-item score where it is not the strategy's own (default's "margin").
    score_name: str = ""

    def select(self, outputs: ModelOutputs, batch_size: int, random_state=None) -> Selection:
        missing = self.needs - outputs.available()
        if missing:
            raise StrategyInputError(
                f"strategy {self.name!r} needs {', '.join(sorted(missing))} from the model"
            )
        if outputs.pool_size is None:
            raise StrategyInputError("model outputs are empty: give at least one array or pool_size")
        check_batch(batch_size, outputs.pool_size)
        indices, scores = self.run(outputs, int(batch_size), as_rng(random_state), **self.params)
        return Selection(np.asarray(indices, dtype=np.intp), np.asarray(scores, dtype=float), self.name)

    def select_by_scores(self, scores_N: np.ndarray, batch_size: int, random_state=None) -> Selection:
        """Pick from precomputed per-item scores the way this strategy would (top-k or stochastic).

        Used where scores are combined before selection, e.g. summed over the
        one-vs-rest heads of a multi-label project.
        """
        if not self.by_score:
            raise StrategyInputError(f"strategy {self.name!r} does not select by a per-item score")
        check_batch(batch_size, len(scores_N))
        if "mode" in self.params:
            idx = _stochastic.stochastic_batch(scores_N, batch_size, mode=self.params["mode"],
                                               beta=self.params["beta"], random_state=as_rng(random_state))
        else:
            idx = _top_k(np.asarray(scores_N, dtype=float), int(batch_size))
        idx = np.asarray(idx, dtype=np.intp)
        return Selection(idx, np.asarray(scores_N, dtype=float)[idx], self.name)

    def score(self, outputs: ModelOutputs) -> np.ndarray | None:
        """Per-item scores for the whole pool, for strategies that have one (else None)."""
        if self.scorer is None:
            return None
        return self.scorer(outputs)


def _top_k(scores_N: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first, ties broken by index (stable)."""
    n = len(scores_N)
    if k < n:
        part = np.argpartition(-scores_N, k - 1)[:k]
    else:
        part = np.arange(n)
    order = np.lexsort((part, -scores_N[part]))
    return part[order]


# -- single-point scores ---------------------------------------------------

SCORES: dict[str, tuple[frozenset[str], Callable[[ModelOutputs], np.ndarray], str]] = {
    "least_confidence": (frozenset({PROBS}), lambda o: _uncertainty.least_confidence(o.probs_N_C),
                         "the items whose top label is least probable"),
    "margin": (frozenset({PROBS}), lambda o: _uncertainty.margin(o.probs_N_C),
               "the items closest to a tie between their top two labels"),
    "entropy": (frozenset({PROBS}), lambda o: _uncertainty.entropy(o.probs_N_C),
                "the items most unsure over all labels (highest entropy)"),
    "bald": (frozenset({SAMPLES}), lambda o: _bald.bald(o.probs_N_K_C),
             "the items whose label would teach the model most (BALD); on logreg, whose posterior takes the "
             "prior of the evidence, above random on the 4 shared sets it ran on but below margin on each "
             "(docs/RESULTS.md): prefer default or margin, or use it with ensemble or mlp samples"),
}

# How each stochastic mode weighs the score s when drawing a batch (see strategies.stochastic).
MODE_WEIGHTS = {"power": "s^beta", "softmax": "exp(beta s)", "softrank": "rank^-beta"}

MODES = _stochastic.MODES


def _run_top_k(score_fn):
    def run(outputs, batch_size, rng):
        scores = score_fn(outputs)
        idx = _top_k(scores, batch_size)
        return idx, scores[idx]

    return run


def _run_stochastic(score_fn):
    def run(outputs, batch_size, rng, mode="power", beta=1.0):
        scores = score_fn(outputs)
        idx = _stochastic.stochastic_batch(scores, batch_size, mode=mode, beta=beta, random_state=rng)
        return idx, scores[idx]

    return run


def _run_random(outputs, batch_size, rng):
    idx = rng.choice(outputs.pool_size, size=batch_size, replace=False)
    return idx, np.zeros(batch_size)


def _run_batchbald(outputs, batch_size, rng, num_samples=10_000, candidates=2_000):
    probs = outputs.probs_N_K_C
    scores = _bald.bald(probs)
    # Greedy BatchBALD costs O(pool x configurations) per pick: minutes on a 100k pool. Items outside
    # the top `candidates` by BALD are almost never picked, so the search runs on those (None: all).
    pool = np.arange(len(probs)) if candidates is None or candidates >= len(probs) else \
        _top_k(scores, max(int(candidates), batch_size))
    idx = pool[_bald.batchbald(probs[pool], batch_size, num_samples=num_samples, random_state=rng)]
    return idx, scores[idx]


def _dpp_quality(outputs: ModelOutputs) -> np.ndarray | None:
    if outputs.probs_N_C is None:
        return None
    # Entropy normalised to [0, 1], floored so a confident item is unlikely, not impossible.
    num_classes = outputs.probs_N_C.shape[1]
    ent = _uncertainty.entropy(outputs.probs_N_C) / max(np.log(num_classes), 1e-12)
    return 0.05 + ent


def _run_dpp(outputs, batch_size, rng):
    quality = _dpp_quality(outputs)
    idx = _dpp.select(outputs.embeddings_N_D, batch_size, quality_N=quality)
    scores = np.ones(batch_size) if quality is None else quality[idx]
    return idx, scores


def _run_coreset(outputs, batch_size, rng):
    return _small.coreset(outputs.embeddings_N_D, batch_size, outputs.labeled_embeddings_L_D, random_state=rng)


def _run_typiclust(outputs, batch_size, rng, k=20):
    return _small.typiclust(outputs.embeddings_N_D, batch_size, outputs.labeled_embeddings_L_D, k=k,
                            random_state=rng)


def _run_probcover(outputs, batch_size, rng, delta=None, candidates=2_000):
    return _small.probcover(outputs.embeddings_N_D, batch_size, outputs.labeled_embeddings_L_D, delta=delta,
                            candidates=candidates, random_state=rng)


def _run_badge(outputs, batch_size, rng):
    return _small.badge(outputs.probs_N_C, outputs.embeddings_N_D, batch_size, random_state=rng)


def _influence_scores(outputs: ModelOutputs) -> np.ndarray:
    """ISAL's score; with cross-fitted heads, the sum of each head's score on its own validation fold
    (so every labeled item serves as validation once, not a fifth of them)."""
    return sum(_influence.influence_scores(h.W_C_D, h.X_train_N_D, h.y_train_N, h.X_val_M_D, h.y_val_M,
                                           h.X_pool_P_D, h.l2) for h in outputs.heads())


# Folds of the cross-fitted influence heads: each head trains on the other folds' labels and validates on its own.
INFLUENCE_FOLDS = 5


def _run_influence(outputs, batch_size, rng, folds=INFLUENCE_FOLDS):
    # folds shaped the heads (assay.learning.acquire builds them); here they are only scored.
    return _run_top_k(_influence_scores)(outputs, batch_size, rng)


_FACTORIES: dict[str, Callable[..., Strategy]] = {}


def register(name: str):
    def deco(factory):
        _FACTORIES[name] = factory
        return factory

    return deco


@register("random")
def _random(**params):
    return Strategy("random", frozenset(), _run_random, params=params,
                    description="items in random order: the baseline the others should beat")


for _score_name, (_needs, _fn, _desc) in SCORES.items():
    def _make_top_k(_n=_score_name, _needs=_needs, _fn=_fn, _desc=_desc, **params):
        return Strategy(_n, _needs, _run_top_k(_fn), params=params, scorer=_fn, by_score=True,
                        description=_desc)

    _FACTORIES[_score_name] = _make_top_k
    for _mode in MODES:
        def _make_stochastic(_n=_score_name, _m=_mode, _needs=_needs, _fn=_fn, _desc=_desc, beta=1.0):
            return Strategy(f"{_m}_{_n}", _needs, _run_stochastic(_fn),
                            params={"mode": _m, "beta": float(beta)}, scorer=_fn, by_score=True,
                            description=f"{_desc}, sampled in proportion to {MODE_WEIGHTS[_m]} so a batch is varied")

        _FACTORIES[f"{_mode}_{_score_name}"] = _make_stochastic


@register("batchbald")
def _batchbald(num_samples=10_000, candidates=2_000):
    params = {"num_samples": int(num_samples), "candidates": None if candidates is None else int(candidates)}
    return Strategy("batchbald", frozenset({SAMPLES}), _run_batchbald, params=params,
                    scorer=lambda o: _bald.bald(o.probs_N_K_C),
                    description="the batch whose labels together teach the model most (BatchBALD); slower than bald")


@register("dpp")
def _dpp_strategy():
    return Strategy("dpp", frozenset({EMBEDDINGS}), _run_dpp, uses=frozenset({PROBS}), cold_start="diversity",
                    scorer=_dpp_quality,
                    description="uncertain items spread over the feature space (a quality-diversity DPP)")


@register("influence")
def _influence_strategy(folds=INFLUENCE_FOLDS):
    if isinstance(folds, bool) or int(folds) != folds or folds < 1:
        raise ValueError(f"folds must be a positive integer, got {folds!r}")
    return Strategy("influence", frozenset({LINEAR_HEAD}), _run_influence,
                    scorer=_influence_scores, params={"folds": int(folds)},
                    description="the items expected to lower the loss on held-out labels most (ISAL influence, "
                                "cross-fitted over `folds` folds); above random on the binary shared sets (SMS, "
                                "adult), level with it on digits and ag_news, below margin on all "
                                "(docs/RESULTS.md): for binary tasks, else prefer default or margin")


@register("coreset")
def _coreset_strategy():
    return Strategy("coreset", frozenset({EMBEDDINGS}), _run_coreset, uses=frozenset({LABELED_EMBEDDINGS}),
                    cold_start="diversity",
                    description="each item farthest from everything labeled or picked so far (Coreset k-center greedy)")


@register("typiclust")
def _typiclust_strategy(k=20):
    return Strategy("typiclust", frozenset({EMBEDDINGS}), _run_typiclust, uses=frozenset({LABELED_EMBEDDINGS}),
                    cold_start="diversity", params={"k": int(k)},
                    description="the most typical item of each large cluster with no label yet (TypiClust)")


@register("probcover")
def _probcover_strategy(delta=None, candidates=2_000):
    params = {"delta": None if delta is None else float(delta),
              "candidates": None if candidates is None else int(candidates)}
    return Strategy("probcover", frozenset({EMBEDDINGS}), _run_probcover, uses=frozenset({LABELED_EMBEDDINGS}),
                    cold_start="diversity", params=params,
                    description="the items whose neighbourhoods cover the most unlabeled items (ProbCover)")


@register("badge")
def _badge_strategy():
    return Strategy("badge", frozenset({PROBS, EMBEDDINGS}), _run_badge,
                    description="uncertain and diverse: k-means++ over last-layer gradient embeddings (BADGE)")


# The budget switch of `default` (Hacohen et al. 2022, "Active learning on a budget"): while a project
# has fewer labels than this many per class, it covers the data (typicality); from then on it
# asks where the model is unsure. Chosen from `assay simulate` on the shared data (docs/RESULTS.md).
DEFAULT_SWITCH_PER_CLASS = 3.0
DEFAULT_PHASES = ("typiclust", "margin")


def _run_default(outputs, batch_size, rng, switch=DEFAULT_SWITCH_PER_CLASS, first=DEFAULT_PHASES[0],
                 then=DEFAULT_PHASES[1]):
    labeled = 0 if outputs.labeled_embeddings_L_D is None else len(outputs.labeled_embeddings_L_D)
    num_classes = None if outputs.probs_N_C is None else outputs.probs_N_C.shape[1]
    early = num_classes is None or labeled < switch * num_classes
    chosen = get(first if early else then)
    selection = chosen.select(outputs, batch_size, random_state=rng)
    return selection.indices, selection.scores


def _default_phase(name: str, position: str) -> str:
    if name not in _FACTORIES or name == "default":
        raise ValueError(f"the {position} phase must be a registered strategy other than 'default', got {name!r}")
    return name


@register("default")
def _default_strategy(switch=DEFAULT_SWITCH_PER_CLASS, first=DEFAULT_PHASES[0], then=DEFAULT_PHASES[1]):
    first, then = _default_phase(first, "first"), _default_phase(then, "then")
    if not float(switch) >= 0:
        raise ValueError(f"switch must be a number of labels per class >= 0, got {switch!r}")
    needs = get(first).needs | get(then).needs
    if SAMPLES in needs or LINEAR_HEAD in needs:
        raise ValueError("the phases of 'default' may need probabilities and embeddings only")
    then_strategy = get(then)
    return Strategy(
        "default", needs | frozenset({PROBS, EMBEDDINGS}), _run_default,
        uses=frozenset({LABELED_EMBEDDINGS}), cold_start=first if get(first).needs <= {EMBEDDINGS} else "diversity",
        params={"switch": float(switch), "first": first, "then": then},
        # Beyond the batch, and summed over labels in multi-label projects: the second phase's score.
        scorer=then_strategy.scorer or (lambda o: _uncertainty.margin(o.probs_N_C)), by_score=True,
        score_name=then if then_strategy.scorer else "margin",
        description=(f"{first} while there are fewer than {float(switch):g} labels per class, then {then} "
                     "(the budget switch of Hacohen et al. 2022): what new projects get"))


def get(name: str, **params) -> Strategy:
    """The strategy registered under ``name``, configured with ``params``."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise StrategyInputError(
            f"unknown strategy {name!r}; available: {', '.join(available())}"
        ) from None
    try:
        return factory(**params)
    except (TypeError, ValueError) as exc:
        raise StrategyInputError(f"bad parameters for strategy {name!r}: {exc}") from None


def available() -> list[str]:
    """Every registered strategy name, sorted."""
    return sorted(_FACTORIES)

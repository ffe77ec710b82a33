"""Named strategies: what each needs from a model and how it picks a batch.

The server and the simulator never call the scoring functions directly; they
ask the registry for a strategy by name, hand it a :class:`ModelOutputs` filled
with what ``strategy.needs`` lists, and get a :class:`Selection` back.

Each :class:`Strategy` also declares what its callers need to know about it, so
that no caller compares strategy names: its phases (``default``'s budget switch:
:meth:`Strategy.phase`), how its batch is drawn (``draw``: the selection
probability of each pick, :meth:`Strategy.draw_at`), the per-item score that
ranks the queue beyond its batch (``beyond``), its cold start, whether it works
on multi-label projects, and its form on a cluster (``on_cluster``). The marks
a queue row carries for a cold start or the queue beyond the batch
(:func:`cold_start_label`, :func:`beyond_label`) are built here too.
"""
from __future__ import annotations

import functools
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

# How a strategy draws its batch, which says the probability each pick had of being chosen
# (assay.learning.propensity; :func:`inclusion_probability`).
UNIFORM = "uniform"  # k of the N pool items, each alike: k/N
DETERMINISTIC = "deterministic"  # a function of the model's outputs: each pick had probability 1
NO_CLOSED_FORM = "no closed form"  # randomized, with inclusion probabilities nobody can write down: None
DRAWS = (UNIFORM, DETERMINISTIC, NO_CLOSED_FORM)

# The uniform draw: the baseline the others should beat (the simulator's ratios are to it), and the cold
# start of a strategy with nothing better to start from.
BASELINE = "random"
# The per-item score that ranks the queue beyond the batch of a strategy without one of its own.
MARGIN = "margin"
# The queue beyond a uniform draw's batch: a fresh uniform order (no score).
UNIFORM_ORDER = "random"

# A strategy's form on a Dask cluster (assay.learning.cluster), where the shards send candidates, not rows.
CLUSTER_BY_SCORE = "by score"  # a per-item score of the probabilities alone: top-k or stochastic over it, exact
CLUSTER_SHORTLIST = "shortlist"  # the strategy itself, on the items its per-item score ranks first pool-wide


def cold_start_label(name: str) -> str:
    """The mark of a batch the strategy ``name`` chose before any model: e.g. "dpp (cold start)"."""
    return f"{name} (cold start)"


def beyond_label(score: str) -> str:
    """The mark of the queue ranked beyond a batch by ``score``: e.g. "margin (beyond the batch)"."""
    return f"{score} (beyond the batch)"


def inclusion_probability(draw: str, batch: int, pool: int) -> float | None:
    """The probability each of ``batch`` items drawn from ``pool`` the way ``draw`` says had of being drawn:
    k/N for a uniform draw, 1 for a deterministic one, None where there is no closed form."""
    if draw == UNIFORM:
        return min(1.0, batch / pool) if pool > 0 else None
    return 1.0 if draw == DETERMINISTIC else None


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
    """A named way of choosing a batch, and what callers need to know about it.

    ``needs`` must all be present in the outputs; ``uses`` are taken when present.
    ``cold_start`` names the registered strategy that picks before any model exists, run on the item
    features: "random", "dpp" (a DPP over the features: diversity), or one that needs embeddings only.
    ``draw``: how its batch is drawn (UNIFORM, DETERMINISTIC or NO_CLOSED_FORM); None for a strategy
    with phases, whose draw is its phase's (:meth:`draw_at`).
    ``phases`` / ``phase_rule``: a strategy that is other strategies in turn (``default``) names them, and
    the rule that says which one picks at a budget (:meth:`phase`).
    ``beyond``: the per-item score that ranks the queue beyond its batch (its own ``score_name`` when it
    selects by one; UNIFORM_ORDER for a uniform draw; else MARGIN, the model's margin).
    ``multi_label``: whether it works on multi-label projects (it selects by a per-item score, summed
    over the labels' models, or needs nothing from a model).
    ``on_cluster``: its form on a cluster (CLUSTER_BY_SCORE, CLUSTER_SHORTLIST), or "" for none.
    """

    name: str
    needs: frozenset[str]
    run: Callable[..., tuple[np.ndarray, np.ndarray]]
    uses: frozenset[str] = frozenset()
    cold_start: str = BASELINE
    params: dict = field(default_factory=dict)
    description: str = ""
    scorer: Callable[["ModelOutputs"], np.ndarray] | None = None
    # True when the batch is a function of the per-item scores alone (top-k or
    # stochastic over them), so scores combined elsewhere can be selected from (multi-label
    # projects sum them over labels; a deep queue ranks the pool by them). `default` has a
    # per-item score for those uses too: its second phase's.
    by_score: bool = False
    # The name of that per-item score ("margin" for margin and power_margin; default's second phase's).
    score_name: str = ""
    draw: str | None = NO_CLOSED_FORM
    phases: tuple[str, ...] = ()
    phase_rule: Callable[[int, int | None], str] | None = None
    beyond: str = ""
    multi_label: bool | None = None
    on_cluster: str = ""

    def __post_init__(self):
        if self.by_score and not self.score_name:
            self.score_name = self.name
        if not self.beyond:
            self.beyond = self.score_name if self.by_score else MARGIN
        if self.multi_label is None:
            self.multi_label = self.by_score

    @property
    def cold_start_label(self) -> str:
        """The mark of the batch its cold start picks."""
        return cold_start_label(self.cold_start)

    @property
    def beyond_label(self) -> str:
        """The mark of the queue ranked beyond its batch."""
        return beyond_label(self.beyond)

    @property
    def beyond_draw(self) -> str:
        """How the queue beyond its batch is drawn: a uniform order, or the top of a ranking given the batch."""
        return UNIFORM if self.beyond == UNIFORM_ORDER else DETERMINISTIC

    @property
    def beyond_scorer(self) -> Callable[["ModelOutputs"], np.ndarray] | None:
        """The per-item score ranking the queue beyond its batch, as a function of the outputs (None for a
        uniform order)."""
        if self.beyond_draw == UNIFORM:
            return None
        return self.scorer if self.by_score else SCORES[self.beyond][1]

    def beyond_scores(self, outputs: "ModelOutputs", rng=None) -> np.ndarray | None:
        """Every pool item's score for the queue beyond the batch (higher first): a fresh uniform order, the
        strategy's own score, or ``beyond`` of the (mean) probabilities; None when the outputs hold no
        probabilities for that (the caller asks the model for them)."""
        if self.beyond_draw == UNIFORM:
            return as_rng(rng).random(outputs.pool_size)
        if self.by_score:
            return np.asarray(self.score(outputs), dtype=float)
        if outputs.probs_N_C is not None:
            probs = outputs.probs_N_C
        elif outputs.probs_N_K_C is not None:
            probs = outputs.probs_N_K_C.mean(axis=1)
        else:
            return None
        return np.asarray(self.beyond_scorer(ModelOutputs(probs_N_C=probs)), dtype=float)

    def phase(self, n_labels: int, n_classes: int | None) -> "Strategy":
        """The strategy that picks a batch with ``n_labels`` labels of ``n_classes`` classes (None or 0: no
        model yet): itself, or for a strategy with phases the one its rule names (what :meth:`select` runs)."""
        return get(self.phase_rule(n_labels, n_classes)) if self.phase_rule is not None else self

    def draw_at(self, n_labels: int, n_classes: int | None, multi_label: bool = False) -> str:
        """How its batch is drawn at that budget; on a multi-label project, by the summed per-item scores."""
        if not multi_label:
            return self.phase(n_labels, n_classes).draw
        if not self.multi_label:
            return NO_CLOSED_FORM
        if not self.by_score:
            return self.draw
        return NO_CLOSED_FORM if "mode" in self.params else DETERMINISTIC

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

# Named functions, not lambdas: a cluster's shard tasks are sent them (assay.learning.cluster).
def _least_confidence_score(o: ModelOutputs) -> np.ndarray:
    return _uncertainty.least_confidence(o.probs_N_C)


def _margin_score(o: ModelOutputs) -> np.ndarray:
    return _uncertainty.margin(o.probs_N_C)


def _entropy_score(o: ModelOutputs) -> np.ndarray:
    return _uncertainty.entropy(o.probs_N_C)


def _bald_score(o: ModelOutputs) -> np.ndarray:
    return _bald.bald(o.probs_N_K_C)


SCORES: dict[str, tuple[frozenset[str], Callable[[ModelOutputs], np.ndarray], str]] = {
    "least_confidence": (frozenset({PROBS}), _least_confidence_score, "the items whose top label is least probable"),
    MARGIN: (frozenset({PROBS}), _margin_score, "the items closest to a tie between their top two labels"),
    "entropy": (frozenset({PROBS}), _entropy_score, "the items most unsure over all labels (highest entropy)"),
    "bald": (frozenset({SAMPLES}), _bald_score,
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


@register(BASELINE)
def _random(**params):
    return Strategy(BASELINE, frozenset(), _run_random, params=params, draw=UNIFORM, beyond=UNIFORM_ORDER,
                    multi_label=True, description="items in random order: the baseline the others should beat")


for _score_name, (_needs, _fn, _desc) in SCORES.items():
    # A score of the probabilities alone can be computed shard by shard on a cluster.
    _cluster = CLUSTER_BY_SCORE if _needs == {PROBS} else ""

    def _make_top_k(_n=_score_name, _needs=_needs, _fn=_fn, _desc=_desc, _c=_cluster, **params):
        return Strategy(_n, _needs, _run_top_k(_fn), params=params, scorer=_fn, by_score=True, score_name=_n,
                        draw=DETERMINISTIC, on_cluster=_c, description=_desc)

    _FACTORIES[_score_name] = _make_top_k
    for _mode in MODES:
        def _make_stochastic(_n=_score_name, _m=_mode, _needs=_needs, _fn=_fn, _desc=_desc, _c=_cluster, beta=1.0):
            return Strategy(f"{_m}_{_n}", _needs, _run_stochastic(_fn),
                            params={"mode": _m, "beta": float(beta)}, scorer=_fn, by_score=True, score_name=_n,
                            draw=NO_CLOSED_FORM, on_cluster=_c,
                            description=f"{_desc}, sampled in proportion to {MODE_WEIGHTS[_m]} so a batch is varied")

        _FACTORIES[f"{_mode}_{_score_name}"] = _make_stochastic


@register("batchbald")
def _batchbald(num_samples=10_000, candidates=2_000):
    params = {"num_samples": int(num_samples), "candidates": None if candidates is None else int(candidates)}
    return Strategy("batchbald", frozenset({SAMPLES}), _run_batchbald, params=params,
                    scorer=_bald_score, draw=NO_CLOSED_FORM,
                    description="the batch whose labels together teach the model most (BatchBALD); slower than bald")


@register("dpp")
def _dpp_strategy():
    return Strategy("dpp", frozenset({EMBEDDINGS}), _run_dpp, uses=frozenset({PROBS}), cold_start="dpp",
                    scorer=_dpp_quality, draw=DETERMINISTIC, on_cluster=CLUSTER_SHORTLIST,
                    description="uncertain items spread over the feature space (a quality-diversity DPP)")


@register("influence")
def _influence_strategy(folds=INFLUENCE_FOLDS):
    if isinstance(folds, bool) or int(folds) != folds or folds < 1:
        raise ValueError(f"folds must be a positive integer, got {folds!r}")
    return Strategy("influence", frozenset({LINEAR_HEAD}), _run_influence,
                    scorer=_influence_scores, params={"folds": int(folds)}, draw=DETERMINISTIC,
                    description="the items expected to lower the loss on held-out labels most (ISAL influence, "
                                "cross-fitted over `folds` folds); above random on the binary shared sets (SMS, "
                                "adult), level with it on digits and ag_news, below margin on all "
                                "(docs/RESULTS.md): for binary tasks, else prefer default or margin")


@register("coreset")
def _coreset_strategy():
    return Strategy("coreset", frozenset({EMBEDDINGS}), _run_coreset, uses=frozenset({LABELED_EMBEDDINGS}),
                    cold_start="dpp", draw=NO_CLOSED_FORM,
                    description="each item farthest from everything labeled or picked so far (Coreset k-center greedy)")


@register("typiclust")
def _typiclust_strategy(k=20):
    return Strategy("typiclust", frozenset({EMBEDDINGS}), _run_typiclust, uses=frozenset({LABELED_EMBEDDINGS}),
                    cold_start="dpp", params={"k": int(k)}, draw=NO_CLOSED_FORM,
                    description="the most typical item of each large cluster with no label yet (TypiClust)")


@register("probcover")
def _probcover_strategy(delta=None, candidates=2_000):
    params = {"delta": None if delta is None else float(delta),
              "candidates": None if candidates is None else int(candidates)}
    return Strategy("probcover", frozenset({EMBEDDINGS}), _run_probcover, uses=frozenset({LABELED_EMBEDDINGS}),
                    cold_start="dpp", params=params, draw=NO_CLOSED_FORM,
                    description="the items whose neighbourhoods cover the most unlabeled items (ProbCover)")


@register("badge")
def _badge_strategy():
    return Strategy("badge", frozenset({PROBS, EMBEDDINGS}), _run_badge, draw=NO_CLOSED_FORM,
                    description="uncertain and diverse: k-means++ over last-layer gradient embeddings (BADGE)")


# The budget switch of `default` (Hacohen et al. 2022, "Active learning on a budget"): while a project
# has fewer labels than this many per class, it covers the data (typicality); from then on it
# asks where the model is unsure. Chosen from `assay simulate` on the shared data (docs/RESULTS.md).
DEFAULT_SWITCH_PER_CLASS = 3.0
DEFAULT_PHASES = ("typiclust", "margin")


def _default_phase_at(switch: float, first: str, then: str, n_labels: int, n_classes: int | None) -> str:
    """The budget switch, the one place it is written: ``first`` while there are fewer than ``switch`` labels
    per class (or no classes: no model yet), then ``then``. Strategy.phase asks it; so does _run_default."""
    return first if not n_classes or n_labels < switch * n_classes else then


def _run_default(outputs, batch_size, rng, switch=DEFAULT_SWITCH_PER_CLASS, first=DEFAULT_PHASES[0],
                 then=DEFAULT_PHASES[1]):
    labeled = 0 if outputs.labeled_embeddings_L_D is None else len(outputs.labeled_embeddings_L_D)
    num_classes = None if outputs.probs_N_C is None else outputs.probs_N_C.shape[1]
    chosen = get(_default_phase_at(switch, first, then, labeled, num_classes))
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
        uses=frozenset({LABELED_EMBEDDINGS}), cold_start=first if get(first).needs <= {EMBEDDINGS} else "dpp",
        params={"switch": float(switch), "first": first, "then": then},
        draw=None, phases=(first, then), phase_rule=functools.partial(_default_phase_at, float(switch), first, then),
        # Beyond the batch, and summed over labels in multi-label projects: the second phase's score.
        scorer=then_strategy.scorer or _margin_score, by_score=True,
        score_name=then if then_strategy.scorer else MARGIN,
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

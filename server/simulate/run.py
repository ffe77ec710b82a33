"""The experiment: for each seed, split and featurize once; for each strategy, replay the server's loop.

A run of one strategy with one seed goes round by round: ``run_round`` (the
retrain worker's own code) fits the model on the revealed labels and picks the
next batch from the pool; the model is scored on the held-out split; the
oracle reveals the batch's labels. It stops when the labeled set reaches the
budget, with one last fit there (no acquisition).

Seeds and strategies run as independent tasks, in processes when ``jobs > 1``:
each seed is first prepared (split, featurizer fit on the training split,
full-data model) and its arrays written to a scratch folder the tasks read.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import zlib
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from sklearn.metrics import f1_score

from assay import strategies
from assay.features import make_featurizer
from assay.learning import embcache
from assay.evaluation import accuracy as accuracy_estimate
from assay.evaluation import candidates as estimate_candidates
from assay.evaluation import stopping
from assay.evaluation.temperature import TOP_K, first_guesses
from assay.learning.acquire import K_SAMPLES, can_fit, fit_model, learned_prior, run_round
from assay.learning.evaluate import fixed_prior, out_of_fold, served_guesses
from assay.learning.queueing import AUDIT_SHARE, audits_due, draw_audits
from . import peers
from .oracle import Oracle
from .splits import cap_pool, holdout_split, initial_set

CURVE_COLUMNS = ("strategy", "seed", "n_labels", "accuracy", "macro_f1", "estimated_accuracy", "estimate_low",
                 "estimate_high", "stop_signal", "kappa", "predicted_gain", "n_audit", "fit_seconds",
                 "acquire_seconds")


@dataclass(frozen=True)
class Config:
    strategies: tuple[str, ...]
    model: str = "logreg"
    model_params: dict = field(default_factory=dict)
    featurizer: str | None = None
    featurizer_params: dict = field(default_factory=dict)
    initial: int = 20
    batch: int = 10
    budget: int = 500
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    test_fraction: float = 0.3
    max_pool: int | None = None
    k_samples: int = K_SAMPLES
    audit_share: float = AUDIT_SHARE
    # A Dask scheduler address (or "local") to score each round's pool on: assay.learning.cluster.
    cluster: str | None = None
    # What the model starts from (assay.learning.zeroshot): the label names ("names"), nothing ("off") or
    # random strings ("random"); and (label, description) pairs embedded instead of names.
    label_names: str = "names"
    label_descriptions: tuple = ()
    # The names' LabelPrior, filled in by run_experiment (None: the featurizer has no vector for a name).
    label_prior: object = field(default=None, compare=False)

    def rounds(self, pool_size: int | None = None) -> int:
        """Rows one (strategy, seed) run writes: the initial fit, then one per batch up to the budget."""
        last = self.budget if pool_size is None else min(self.budget, pool_size)
        return 1 + max(0, math.ceil((last - min(self.initial, last)) / self.batch))


@dataclass
class SeedSetup:
    """What every strategy run of one seed shares. The arrays live in ``path`` (an .npz)."""

    seed: int
    path: str
    n_train: int
    n_test: int
    n_features: int
    classes: list
    initial: np.ndarray  # positions in the training split
    full_accuracy: float
    full_macro_f1: float
    featurize_seconds: float
    full_fit_seconds: float

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("path")
        d["initial"] = [int(i) for i in self.initial]
        return d


def strategy_rng(seed: int, strategy: str) -> np.random.Generator:
    """A stream per (seed, strategy): a run's result does not depend on which other strategies ran."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(strategy.encode()),)))


def evaluate(model, X_test, y_test, classes, fallback) -> tuple[float, float]:
    """Accuracy and macro-F1 (over every class of the data set) on the held-out split."""
    if model is None:
        pred = np.full(len(y_test), fallback, dtype=object)
    else:
        probs = model.predict_proba(X_test)
        pred = np.asarray(model.classes_, dtype=object)[np.argmax(probs, axis=1)]
    accuracy = float(np.mean(pred == y_test))
    macro_f1 = float(f1_score(y_test.astype(str), pred.astype(str), labels=[str(c) for c in classes],
                              average="macro", zero_division=0))
    return accuracy, macro_f1


def _featurizer(dataset, config: Config):
    params = {**dataset.featurizer_params, **config.featurizer_params}
    # ASSAY_EMBEDDING_CACHE: sentence embeddings are looked up by content hash before they are computed.
    return embcache.attach(make_featurizer(dataset.item_type, config.featurizer, **params))


def with_label_prior(dataset, config: Config) -> Config:
    """The config with the data set's label names embedded (a featurizer that embeds names: MiniLM; else unchanged)."""
    from dataclasses import replace

    from assay.learning.zeroshot import label_prior

    if config.label_names == "off" or config.label_prior is not None:
        return config
    prior = label_prior(_fitted_featurizer(dataset, config), dataset.classes, dict(config.label_descriptions), names=config.label_names)
    return replace(config, label_prior=prior)


def _fitted_featurizer(dataset, config: Config):
    """A featurizer that embeds names and learns nothing from the items (MiniLM), fitted on one; else None."""
    from assay.learning.zeroshot import embeds_names

    featurizer = _featurizer(dataset, config)
    if not getattr(featurizer, "item_wise", False) or not embeds_names(featurizer):
        return None
    return featurizer.fit(dataset.items[:1])


def featurize_once(dataset, config: Config, workdir: str) -> str | None:
    """Every item's features, computed once for all seeds, when the featurizer learns nothing from the
    pool (``item_wise``, e.g. sentence embeddings); None when each seed must fit its own (TF-IDF, pixels)."""
    featurizer = _featurizer(dataset, config)
    if not getattr(featurizer, "item_wise", False):
        return None
    X = np.asarray(featurizer.fit(dataset.items).transform(dataset.items), dtype=np.float32)
    path = os.path.join(workdir, "features.npy")
    np.save(path, X)
    return path


def featurize(dataset, config: Config, train, test):
    featurizer = _featurizer(dataset, config)
    train_items = [dataset.items[i] for i in train]
    # Unsupervised fit (vocabulary, SVD, pixel statistics) on the training split only, as the
    # server fits on its pool; the test items are only transformed.
    X_train = np.asarray(featurizer.fit_transform(train_items), dtype=np.float32)
    X_test = np.asarray(featurizer.transform([dataset.items[i] for i in test]), dtype=np.float32)
    return X_train, X_test


def prepare_seed(dataset, config: Config, seed: int, workdir: str, features_path: str | None = None) -> SeedSetup:
    """Split, featurize and fit the full-data reference for one seed; write the arrays to ``workdir``."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    labels = dataset.labels
    if dataset.test_start is None:
        train, test = holdout_split(labels, config.test_fraction, rng)
    else:
        train, test = np.arange(dataset.test_start), np.arange(dataset.test_start, len(labels))
    train = cap_pool(train, labels, config.max_pool, rng)
    y_train, y_test = labels[train], labels[test]
    initial = initial_set(y_train, config.initial, rng)
    t0 = time.perf_counter()
    if features_path is None:
        X_train, X_test = featurize(dataset, config, train, test)
    else:
        X_all = np.load(features_path, mmap_mode="r")
        X_train, X_test = np.asarray(X_all[train]), np.asarray(X_all[test])
    t1 = time.perf_counter()
    # The reference: the same model trained on every label of the training split.
    full = fit_model(config.model, config.model_params, X_train, y_train, random_state=int(seed))
    t2 = time.perf_counter()
    accuracy, macro_f1 = evaluate(full, X_test, y_test, dataset.classes, None)
    path = os.path.join(workdir, f"seed-{seed}.npz")
    np.savez(path, X_train=X_train, X_test=X_test, y_train=y_train.astype(str), y_test=y_test.astype(str))
    return SeedSetup(int(seed), path, len(train), len(test), X_train.shape[1], dataset.classes, initial,
                     accuracy, macro_f1, t1 - t0, t2 - t1)


@lru_cache(maxsize=2)
def _load(path: str):
    with np.load(path) as f:
        return (f["X_train"], f["X_test"], f["y_train"].astype(object), f["y_test"].astype(object))


def run_strategy(setup: SeedSetup, strategy: str, config: Config, progress=None) -> list[dict]:
    """One strategy, one seed (see :func:`_run_rounds`), on ``config.cluster`` when one is named."""
    if not config.cluster:
        return _run_rounds(setup, strategy, config, progress)
    from assay.learning.cluster import connect

    with connect(config.cluster) as client:
        return _run_rounds(setup, strategy, config, progress, client)


def _run_rounds(setup: SeedSetup, strategy: str, config: Config, progress=None, cluster=None) -> list[dict]:
    """One strategy, one seed: the learning curve as rows of ``CURVE_COLUMNS``.

    Each round, ``config.audit_share`` of the labels (assay.learning.queueing's rule) are audits drawn
    uniformly from the pool, and every chosen item is served with the round model's prediction, as the
    server's queue does: the accuracy estimate and the stopping signal are computed from those alone.
    """
    X_train, X_test, hidden_labels, y_test = _load(setup.path)
    oracle = Oracle(hidden_labels)
    del hidden_labels  # from here on, labels come only from the oracle
    notify = getattr(progress, "put", progress)
    is_peer = strategy in peers.PEERS
    picks_uniform = not is_peer and strategies.get(strategy).draw == strategies.UNIFORM
    stream = peers.PEERS[strategy].counterpart if is_peer else strategy
    rng = strategy_rng(setup.seed, stream)
    # Audits and the stop set draw from streams of their own: the strategy's stream stays the one
    # a run without audits uses, and a peer gets its counterpart's audits.
    audit_rng = strategy_rng(setup.seed, f"{stream}:audit")
    stop_rows = stopping.stop_set(len(oracle), np.random.default_rng(np.random.SeedSequence(int(setup.seed),
                                                                                            spawn_key=(2,))))
    share = float(config.audit_share)
    tracker = _Tracker()

    labeled = [int(i) for i in setup.initial]
    tracker.labeled_uniform = [False] * len(labeled)  # the initial labels are stratified, not uniform
    y_labeled = list(oracle.reveal(labeled))
    in_pool = np.ones(len(oracle), dtype=bool)
    in_pool[labeled] = False
    rows = []
    prior = None
    while True:
        pool = np.flatnonzero(in_pool)
        batch = min(config.batch, config.budget - len(labeled), len(pool))
        round_seed = int(rng.integers(2**31))
        n_audit = min(audits_due(len(labeled), tracker.audits_drawn, batch, share), max(batch - 1, 0))
        pool_top = None
        if batch > 0:
            result = run_round(model_spec=config.model, model_params=config.model_params,
                               strategy_name="random" if is_peer else strategy, strategy_params=None,
                               X_labeled=X_train[labeled], y_labeled=list(y_labeled), X_pool=X_train[pool],
                               batch_size=1 if is_peer else batch - n_audit, random_state=round_seed,
                               k_samples=config.k_samples, l2_previous=prior, cluster=cluster,
                               label_prior=config.label_prior)
            model, fit_seconds, acquire_seconds = result.model, result.fit_seconds, result.acquire_seconds
            chosen = result.indices
            pool_top = result.pool_top_N_K
            if is_peer:
                # The model is run_round's fit; only the selection is the peer's. Its randomness comes
                # from the round's seed, leaving the run's stream in step with the counterpart's.
                start = time.perf_counter()
                peer_rng = np.random.default_rng(np.random.SeedSequence(round_seed, spawn_key=(1,)))
                if model is None:
                    chosen = peer_rng.choice(len(pool), size=batch - n_audit, replace=False)
                else:
                    chosen = peers.select(strategy, model, X_train[pool], batch - n_audit, peer_rng,
                                          config.k_samples)
                acquire_seconds = time.perf_counter() - start
            chosen = np.asarray(chosen, dtype=np.intp)
            audits = draw_audits(len(pool), n_audit, chosen, audit_rng)
            chosen = np.concatenate([chosen, audits]).astype(np.intp)
            tracker.audits_drawn += len(audits)
            if len(chosen) != batch or len(set(chosen.tolist())) != batch or \
                    (batch and (chosen.min() < 0 or chosen.max() >= len(pool))):
                raise RuntimeError(f"strategy {strategy!r} returned {chosen.tolist()} for a batch of {batch} "
                                   f"from a pool of {len(pool)}")
        else:
            start = time.perf_counter()
            y = np.asarray(y_labeled, dtype=object)
            model = fit_model(config.model, config.model_params, X_train[labeled], y,
                              random_state=round_seed, l2_previous=prior,
                              label_prior=config.label_prior) if can_fit(y) else None
            fit_seconds, acquire_seconds = time.perf_counter() - start, 0.0
        if model is not None:
            prior = learned_prior(model)  # the next round's fit starts from it, as the server's retrain does
        fallback = max(sorted(set(y_labeled)), key=y_labeled.count)  # sorted: set order varies by process
        accuracy, macro_f1 = evaluate(model, X_test, y_test, setup.classes, fallback)
        row = {"strategy": strategy, "seed": setup.seed, "n_labels": len(labeled), "accuracy": accuracy,
               "macro_f1": macro_f1, "fit_seconds": fit_seconds, "acquire_seconds": acquire_seconds}
        row.update(tracker.assess(model, config, X_train, labeled, y_labeled, pool, pool_top, stop_rows,
                                  round_seed))
        rows.append(row)
        if notify:
            notify(1)
        if batch == 0:
            return rows
        picked = pool[chosen]
        served = tracker.serve(model, X_train[picked])
        answers = oracle.reveal(picked)
        audit_B = np.arange(len(chosen)) >= len(chosen) - len(audits)
        # Drawn uniformly from the pool: the audits, and every pick of a strategy that draws uniformly (random).
        uniform_B = audit_B | picks_uniform
        if served is not None:
            tracker.record(served, answers, audit_B, uniform_B, len(labeled))
        y_labeled.extend(answers)
        tracker.labeled_uniform.extend(uniform_B.tolist())
        labeled.extend(int(i) for i in picked)
        in_pool[picked] = False


LOO_MAX = 30  # the most recent uniform labels each round's leave-one-out refits cover (ASSAY_SIM_LOO=1)


def leave_one_out(config, model, X_L_D, y_L, rows, seed) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and correctness on each of ``rows`` under a model fitted on every other label (with the
    round model's prior): the current model's answers on labels it has not seen, one refit per row."""
    params = fixed_prior(config.model_params, model)
    conf, correct = [], []
    for i in rows:
        keep = np.arange(len(y_L)) != i
        if not can_fit(y_L[keep]):
            continue
        fitted = fit_model(config.model, params, X_L_D[keep], y_L[keep], random_state=seed)
        p = fitted.predict_proba(X_L_D[i:i + 1])[0]
        conf.append(float(p.max()))
        correct.append(bool(np.asarray(fitted.classes_, dtype=object)[int(p.argmax())] == y_L[i]))
    return np.array(conf), np.array(correct)


class _Tracker:
    """What the server learns about its model from the labels it is given: the prequential tests, the
    audits among them, the stop set's predictions by label count, and from them the columns a round reports."""

    def __init__(self):
        self.served_conf, self.correct, self.audit, self.uniform, self.served_at = [], [], [], [], []
        # Per test, the served prediction's first guesses: their probabilities and labels, best first.
        self.served_top: list[list[float]] = []
        self.served_top_labels: list[list] = []
        self.answers: list = []
        self.labeled_uniform: list[bool] = []  # per label, in the order labeled: drawn uniformly from the pool
        self.stop_history: list[tuple[int, np.ndarray]] = []  # (labels, stop-set predictions) per model
        self.settled: list[bool] = []  # per model: stopping.settled
        self.audits_drawn = 0  # cold-start rounds' audits too, which have no prediction to test

    @property
    def n_audit(self) -> int:
        return int(np.sum(self.audit)) if self.audit else 0

    def serve(self, model, X_B_D):
        """The live model's prediction, its confidence and its first guesses (probabilities and labels, best
        first) for the items about to be labeled (None: no model)."""
        if model is None:
            return None
        probs = model.predict_proba(X_B_D)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :TOP_K]
        classes = np.asarray(model.classes_, dtype=object)
        top = np.take_along_axis(probs, order, axis=1)
        return classes[order[:, 0]], top[:, 0], top, classes[order]

    def record(self, served, answers, audit_B, uniform_B, n_labels: int) -> None:
        pred, conf, top, top_labels = served
        self.served_at.extend([n_labels] * len(conf))
        self.served_conf.extend(conf.tolist())
        self.correct.extend((pred == np.asarray(answers, dtype=object)).tolist())
        self.audit.extend(np.asarray(audit_B, dtype=bool).tolist())
        self.uniform.extend(np.asarray(uniform_B, dtype=bool).tolist())
        self.served_top.extend(top.tolist())
        self.served_top_labels.extend(top_labels.tolist())
        self.answers.extend(answers)

    def assess(self, model, config, X_train, labeled, y_labeled, pool, pool_top, stop_rows, seed) -> dict:
        out = {"n_audit": self.n_audit, "estimated_accuracy": None, "estimate_low": None, "estimate_high": None,
               "stop_signal": 0, "kappa": None, "predicted_gain": None}
        if model is None:
            return out
        classes = np.asarray(model.classes_, dtype=object)
        probs_S_C = model.predict_proba(X_train[stop_rows])
        stop_pred = classes[np.argmax(probs_S_C, axis=1)]
        ref = stopping.reference(self.stop_history, len(labeled))
        self.stop_history.append((len(labeled), stop_pred))
        if ref is not None:
            out["kappa"] = stopping.cohen_kappa(stop_pred, ref[1])
            out["predicted_gain"] = stopping.predicted_gain(probs_S_C, classes, ref[1])
        self.settled.append(stopping.settled(out["kappa"], out["predicted_gain"]))
        out["stop_signal"] = int(stopping.stop_signal(self.settled))
        n_classes = len(model.classes_)
        if pool_top is None:
            pool_top = first_guesses(model.predict_proba(X_train[pool])) if len(pool) else np.zeros((0, 1))
        y = np.asarray(y_labeled, dtype=object)
        oof_conf, oof_correct, _, oof_top = out_of_fold(config.model, fixed_prior(config.model_params, model),
                                               X_train[labeled], y, random_state=seed)
        held = np.isfinite(oof_conf)
        uniform = held & np.asarray(self.labeled_uniform, dtype=bool)
        loo = leave_one_out(config, model, X_train[labeled], y, np.flatnonzero(self.labeled_uniform)[-LOO_MAX:],
                            seed) if os.environ.get("ASSAY_SIM_LOO") else None
        age = len(labeled) - np.asarray(self.served_at)
        # The audits and the random strategy's picks, as the server counts them (assay.learning.evaluate.
        # uniform_draws; it also counts a random cold start and a dry queue's fill, which a simulation's
        # stratified start and full pool never have).
        audited = held & np.asarray(self.labeled_uniform, dtype=bool)
        # The tests as the server's store hands them over, so that both take their first guesses one way.
        tests = [{"top": list(zip(labels, top)), "predicted": labels[0], "confidence": top[0], "label": answer}
                 for top, labels, answer in zip(self.served_top, self.served_top_labels, self.answers)]
        served_top, served_hit = served_guesses(tests, n_classes)
        est = accuracy_estimate.estimate(pool_top, oof_top[held], served_top, self.correct, self.audit, age,
                                         n_labels=len(labeled), audit_oof_conf_A=oof_top[audited],
                                         audit_oof_correct_A=oof_correct[audited], served_hit_M=served_hit,
                                         n_classes=n_classes, untempered=True, random_state=seed)
        if est is not None:
            # The estimators simulations compare beside the reported one (docs/RESULTS.md, issue 27).
            est.candidates.update(estimate_candidates.candidates(
                accuracy_estimate.thin(np.concatenate([pool_top[:, 0], oof_conf[held]])), self.served_conf, self.correct,
                self.uniform, accuracy_estimate.recency_weights(age, len(labeled)), oof_conf[uniform],
                oof_correct[uniform], loo=loo, rng=seed))
        if est is not None:
            out.update(estimated_accuracy=est.accuracy, estimate_low=est.low, estimate_high=est.high)
            for name, (a, lo, hi) in est.candidates.items():
                out.update({f"est_{name}": a, f"low_{name}": lo, f"high_{name}": hi})
        return out


# -- running many tasks ----------------------------------------------------

_worker_progress = None


def _exit_when_orphaned(parent_pid: int, every_seconds: float = 2.0):
    # A parent killed by a signal cannot shut its pool down; without this the workers would
    # keep computing for nobody.
    while True:
        time.sleep(every_seconds)
        if os.getppid() != parent_pid:
            os._exit(1)


def _init_worker(progress_queue, parent_pid):
    """Each worker runs single-threaded: the jobs are the parallelism, and BLAS threads would fight them."""
    global _worker_progress
    _worker_progress = progress_queue
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    from threadpoolctl import threadpool_limits

    _init_worker.limits = threadpool_limits(limits=1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _prepare_task(args):
    return prepare_seed(*args)


def _guarded_run(setup: SeedSetup, strategy: str, config: Config, progress) -> tuple[list[dict], str | None]:
    """(rows, None), or ([], what went wrong): one failing run must not throw away hours of the others."""
    try:
        return run_strategy(setup, strategy, config, progress=progress), None
    except Exception as exc:  # noqa: BLE001 - reported with the results
        return [], f"{strategy}, seed {setup.seed}: {type(exc).__name__}: {exc}"


def _strategy_task(args):
    setup, strategy, config = args
    return _guarded_run(setup, strategy, config, _worker_progress)


def _drain(queue, progress):
    import queue as queue_mod

    while True:
        try:
            n = queue.get_nowait()
        except (queue_mod.Empty, OSError, EOFError):
            return
        if progress:
            progress(n)


def _map(pool, fn, tasks, queue, progress) -> list:
    futures = [pool.submit(fn, t) for t in tasks]
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
        _drain(queue, progress)
        for f in done:
            if f.exception() is not None:
                for other in pending:
                    other.cancel()
                raise f.exception()
    _drain(queue, progress)
    return [f.result() for f in futures]


@dataclass
class Experiment:
    config: Config
    setups: list[SeedSetup]
    rows: list[dict]
    seconds: float
    jobs: int
    failures: list[str] = field(default_factory=list)  # runs that raised, as "strategy, seed s: error"


def run_experiment(dataset, config: Config, *, jobs: int = 1, progress=None, on_prepared=None) -> Experiment:
    """Every (strategy, seed) run; ``progress(n)`` is called as rounds finish (in any process)."""
    started = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="assay-simulate-")
    try:
        config = with_label_prior(dataset, config)
        features_path = featurize_once(dataset, config, workdir)
        prepare_args = [(dataset, config, s, workdir, features_path) for s in config.seeds]
        if jobs > 1:
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(queue, os.getpid())) as pool:
                setups = _map(pool, _prepare_task, prepare_args, queue, None)
                if on_prepared:
                    on_prepared(setups)
                tasks = [(setup, s, config) for s in config.strategies for setup in setups]
                results = _map(pool, _strategy_task, tasks, queue, progress)
        else:
            setups = [prepare_seed(*args) for args in prepare_args]
            if on_prepared:
                on_prepared(setups)
            results = [_guarded_run(setup, s, config, progress) for s in config.strategies for setup in setups]
        _load.cache_clear()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [row for rows, _ in results for row in rows]
    failures = [error for _, error in results if error]
    return Experiment(config, setups, rows, time.perf_counter() - started, jobs, failures)

"""Speed and memory of the acquisition functions (issue 2), next to peer libraries.

    python benchmarks/acquisition.py            # full sizes, a few minutes
    python benchmarks/acquisition.py --quick    # small sizes, a smoke run

Full sizes: N=100,000 pool items, C=10 classes, K=20 posterior samples, B=100,
D=64 embedding dimensions; influence on D=384 features, 2,000 labeled items
(the server's 80/20 train/held-out split) and a 100,000-item pool. All inputs
are float64, as the default logistic-regression model produces them.

Times are medians of a few calls after a warm-up call. Peak memory is the
extra memory at the peak of one call, as a multiple of the call's input
arrays, measured two ways (see ``_common.MemoryPeak``); the aim is judged on
the larger of the two.

The peers are optional: a row whose library is missing says so and the run
goes on.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# batchbald_redux draws tqdm bars on stderr; they would interleave with the tables.
os.environ.setdefault("TQDM_DISABLE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    NOT_INSTALLED, Timing, add_repo_to_path, fmt_bytes, fmt_ratio, fmt_seconds, load_line, machine_line,
    median_time, nbytes, peak_memory, print_table, verdict, version_of,
)

add_repo_to_path()

import numpy as np  # noqa: E402

from assay.strategies import bald as our_bald  # noqa: E402
from assay.strategies import dpp as our_dpp  # noqa: E402
from assay.strategies import influence as our_influence  # noqa: E402
from assay.strategies import stochastic as our_stochastic  # noqa: E402
from assay.strategies import uncertainty as our_uncertainty  # noqa: E402
from assay.strategies.registry import LinearHead, ModelOutputs  # noqa: E402
from assay.strategies.registry import get as get_strategy  # noqa: E402

# Aims from issue 2.
MEMORY_AIM = 4.0  # peak extra memory, as a multiple of the input arrays ("a small multiple")
BALD_FLOOR_AIM = 3.0  # BALD time / one numpy pass over probs_N_K_C
PEER_AIM = 1.0  # our time / the peer's time
DPP_SECONDS_AIM = 2.0
INFLUENCE_SECONDS_AIM = 3.0
# Our reading of "orders of magnitude" for PowerBALD against BatchBALD: at least 100x faster.
STOCHASTIC_VS_BATCHBALD_AIM = 0.01
BALD_AGREEMENT_AIM = 1e-9  # max |ours - BaaL| on the same array, nats


@dataclass(frozen=True)
class Sizes:
    n: int
    k: int
    c: int
    batch: int
    dim: int
    influence_dim: int
    influence_labeled: int
    influence_pool: int
    batchbald_n: int
    batchbald_batch: int
    batchbald_samples: int
    dppy_n: int
    dppy_batch: int


FULL = Sizes(n=100_000, k=20, c=10, batch=100, dim=64,
             influence_dim=384, influence_labeled=2_000, influence_pool=100_000,
             batchbald_n=5_000, batchbald_batch=10, batchbald_samples=10_000,
             # A k-DPP over a cosine kernel of D=64 needs k <= 64 (the kernel's rank).
             dppy_n=2_000, dppy_batch=50)
QUICK = Sizes(n=5_000, k=20, c=10, batch=20, dim=32,
              influence_dim=64, influence_labeled=300, influence_pool=5_000,
              batchbald_n=200, batchbald_batch=3, batchbald_samples=1_000,
              dppy_n=300, dppy_batch=16)


# -- inputs ---------------------------------------------------------------------------


def _softmax_last(logits: np.ndarray) -> np.ndarray:
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return logits


def make_posterior(rng: np.random.Generator, n: int, k: int, c: int) -> np.ndarray:
    """``probs_N_K_C`` with items ranging from confident and agreed to uncertain and disputed."""
    sharpness_N = rng.uniform(0.3, 4.0, size=(n, 1, 1))
    disagreement_N = rng.uniform(0.05, 2.0, size=(n, 1, 1))
    centre_N_1_C = rng.normal(size=(n, 1, c)) * sharpness_N
    logits_N_K_C = rng.normal(size=(n, k, c))
    logits_N_K_C *= disagreement_N
    logits_N_K_C += centre_N_1_C
    return _softmax_last(logits_N_K_C)


def make_embeddings(rng: np.random.Generator, n: int, d: int, clusters: int = 50) -> np.ndarray:
    """Clustered embeddings, so that diversity has something to do."""
    centres_K_D = rng.normal(size=(clusters, d)) * 3.0
    return centres_K_D[rng.integers(clusters, size=n)] + rng.normal(size=(n, d))


def dpp_quality(probs_N_C: np.ndarray) -> np.ndarray:
    """The registry's DPP quality: normalised predictive entropy, floored at 0.05."""
    return 0.05 + our_uncertainty.entropy(probs_N_C) / np.log(probs_N_C.shape[1])


def head_args(head: LinearHead) -> tuple:
    """``influence_scores``' positional arguments, in its order."""
    return (head.W_C_D, head.X_train_N_D, head.y_train_N, head.X_val_M_D, head.y_val_M, head.X_pool_P_D, head.l2)


def make_influence(rng: np.random.Generator, d: int, labeled: int, pool: int, c: int) -> LinearHead:
    """A linear head over d features (the last a constant 1); labels from a noisy teacher.

    W is a shrunk teacher, not the fitted optimum: the cost of the exact
    influence does not depend on where W is, only its meaning does.
    """
    def features(m):
        X = rng.normal(size=(m, d))
        X[:, -1] = 1.0
        return X

    teacher_C_D = rng.normal(size=(c, d)) / np.sqrt(d) * 2.0
    X_lab = features(labeled)
    y_lab = np.argmax(X_lab @ teacher_C_D.T + rng.gumbel(size=(labeled, c)), axis=1)
    n_val = int(round(0.2 * labeled))
    return LinearHead(W_C_D=0.5 * teacher_C_D, X_train_N_D=X_lab[n_val:], y_train_N=y_lab[n_val:],
                           X_val_M_D=X_lab[:n_val], y_val_M=y_lab[:n_val], X_pool_P_D=features(pool),
                           l2=1.0)


# -- measuring ------------------------------------------------------------------------


@dataclass
class Measured:
    name: str
    shape: str
    timing: Timing
    input_bytes: int
    traced_x: float | None = None
    rss_x: float | None = None

    @property
    def seconds(self) -> float:
        return self.timing.median

    @property
    def memory_x(self) -> float | None:
        values = [v for v in (self.traced_x, self.rss_x) if v is not None]
        return max(values) if values else None


def measure(name: str, shape: str, fn, input_bytes: int, repeats: int, memory: bool = True) -> Measured:
    """Time ``fn``; with ``memory``, the warm-up call is the one whose peak memory is measured."""
    if not memory:
        return Measured(name, shape, median_time(fn, repeats), input_bytes)
    peak = peak_memory(fn)
    timing = median_time(fn, repeats, warm_up=(peak.seconds, peak.result))
    return Measured(name, shape, timing, input_bytes,
                    traced_x=None if peak.traced is None else peak.traced / input_bytes,
                    rss_x=None if peak.rss is None else peak.rss / input_bytes)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def ratio_row(label: str, ours: Measured | None, theirs: Measured | None, aim: float | None,
              aim_text: str) -> list[str]:
    if ours is None or theirs is None:
        return [label, "-", "-", NOT_INSTALLED, aim_text, "-"]
    ratio = ours.seconds / theirs.seconds
    return [label, fmt_seconds(ours.seconds), fmt_seconds(theirs.seconds), fmt_ratio(ratio), aim_text,
            verdict(ratio, aim)]


# -- the benchmark --------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs and of the samplers")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per row after the warm-up (default 5, or 1 with --quick)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 5)
    rng = np.random.default_rng(args.seed)

    versions = {name: version_of(dist, module) for name, dist, module in (
        ("numpy", "numpy", "numpy"), ("scipy", "scipy", "scipy"), ("torch", "torch", "torch"),
        ("baal", "baal", "baal"), ("batchbald_redux", "batchbald-redux", "batchbald_redux"),
        ("dppy", "dppy", "dppy"))}
    print(f"Acquisition benchmark ({'quick' if args.quick else 'full'} sizes, seed {args.seed}, "
          f"median of up to {repeats} calls after a warm-up)")
    print(f"machine: {machine_line()}; at start, {load_line()}")
    print("versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items()))
    s = sizes
    print(f"sizes: N={s.n:,} K={s.k} C={s.c} B={s.batch} D={s.dim}; influence D={s.influence_dim} "
          f"labeled={s.influence_labeled:,} pool={s.influence_pool:,}; BatchBALD N={s.batchbald_n:,} "
          f"B={s.batchbald_batch}; dppy N={s.dppy_n:,} k={s.dppy_batch}")

    probs_N_K_C = make_posterior(rng, s.n, s.k, s.c)
    probs_N_C = probs_N_K_C.mean(axis=1)
    probs_N_C /= probs_N_C.sum(axis=1, keepdims=True)
    bald_N = our_bald.bald(probs_N_K_C)
    embeddings_N_D = make_embeddings(rng, s.n, s.dim)
    quality_N = dpp_quality(probs_N_C)
    head = make_influence(rng, s.influence_dim, s.influence_labeled, s.influence_pool, s.c)
    outputs = ModelOutputs(probs_N_K_C=probs_N_K_C)
    small_probs_N_K_C = probs_N_K_C[: s.batchbald_n].copy()
    small_outputs = ModelOutputs(probs_N_K_C=small_probs_N_K_C)
    # batchbald_redux (through toma) runs gc.collect() at every step; without this it would walk
    # the ~300,000 objects the imports above made (torch, BaaL, dppy), ~0.4 s a call here.
    # Freezing them favours that peer, never us.
    gc.freeze()

    # 1. Every strategy on its own --------------------------------------------------
    nkc = f"N={s.n:,} K={s.k} C={s.c}"
    rows: list[Measured] = []
    time_aims: dict[str, float] = {}
    for name, fn in (("least_confidence", our_uncertainty.least_confidence),
                     ("margin", our_uncertainty.margin), ("entropy", our_uncertainty.entropy)):
        rows.append(measure(name, f"N={s.n:,} C={s.c}", lambda fn=fn: fn(probs_N_C),
                            nbytes(probs_N_C), repeats))
    ours_bald = measure("bald", nkc, lambda: our_bald.bald(probs_N_K_C), nbytes(probs_N_K_C), repeats)
    rows.append(ours_bald)
    for mode in our_stochastic.MODES:
        rows.append(measure(f"stochastic_batch {mode}", f"N={s.n:,} B={s.batch} (scores)",
                            lambda mode=mode: our_stochastic.stochastic_batch(
                                bald_N, s.batch, mode=mode, random_state=args.seed),
                            nbytes(bald_N), repeats))
    power_bald = get_strategy("power_bald")
    ours_power = measure("power_bald end-to-end", f"{nkc} B={s.batch}",
                         lambda: power_bald.select(outputs, s.batch, random_state=args.seed),
                         nbytes(probs_N_K_C), repeats)
    rows.append(ours_power)
    ours_batchbald = measure("batchbald (small pool)",
                             f"N={s.batchbald_n:,} K={s.k} C={s.c} B={s.batchbald_batch}",
                             lambda: our_bald.batchbald(small_probs_N_K_C, s.batchbald_batch,
                                                        num_samples=s.batchbald_samples,
                                                        random_state=args.seed),
                             nbytes(small_probs_N_K_C), repeats)
    rows.append(ours_batchbald)
    ours_dpp = measure("dpp.select", f"N={s.n:,} D={s.dim} B={s.batch}",
                       lambda: our_dpp.select(embeddings_N_D, s.batch, quality_N=quality_N),
                       nbytes(embeddings_N_D, quality_N), repeats)
    rows.append(ours_dpp)
    time_aims["dpp.select"] = DPP_SECONDS_AIM
    ours_influence = measure(
        "influence_scores",
        f"D={s.influence_dim} train={len(head.y_train_N):,} val={len(head.y_val_M)} "
        f"pool={s.influence_pool:,} C={s.c}",
        lambda: our_influence.influence_scores(*head_args(head)), nbytes(*head_args(head)[:-1]), repeats)
    rows.append(ours_influence)
    time_aims["influence_scores"] = INFLUENCE_SECONDS_AIM

    table = []
    for m in rows:
        time_aim = time_aims.get(m.name)
        time_ok = verdict(m.seconds, time_aim)
        mem_ok = verdict(m.memory_x, MEMORY_AIM)
        overall = "MISS" if "MISS" in (time_ok, mem_ok) else "PASS"
        table.append([m.name, m.shape, fmt_seconds(m.seconds), fmt_bytes(m.input_bytes), _x(m.traced_x),
                      _x(m.rss_x), f"<{time_aim:g} s" if time_aim else "-", f"<={MEMORY_AIM:g}x", overall])
    print_table("Strategies (time: median; peak: extra memory at the peak / input size)",
                ["strategy", "size", "time", "input", "peak traced", "peak RSS", "time aim", "peak aim",
                 "PASS/MISS"], table)

    # 2. BALD against one pass over its input --------------------------------------------
    floor = measure("probs_N_K_C.sum()", nkc, lambda: probs_N_K_C.sum(), nbytes(probs_N_K_C), repeats,
                    memory=False)
    log_out = np.empty_like(probs_N_K_C)
    log_pass = measure("np.log(probs_N_K_C, out=...)", nkc, lambda: np.log(probs_N_K_C, out=log_out),
                       nbytes(probs_N_K_C), repeats, memory=False)
    del log_out
    floor_ratio = ours_bald.seconds / floor.seconds
    print_table(
        "BALD against one numpy pass over probs_N_K_C (floor: probs_N_K_C.sum(), a single read of the array)",
        ["comparison", "ours", "pass", "ratio", "aim", "PASS/MISS"],
        [["BALD / one pass (sum)", fmt_seconds(ours_bald.seconds), fmt_seconds(floor.seconds),
          fmt_ratio(floor_ratio), f"<={BALD_FLOOR_AIM:g}x", verdict(floor_ratio, BALD_FLOOR_AIM)],
         ["BALD / one log pass (info)", fmt_seconds(ours_bald.seconds), fmt_seconds(log_pass.seconds),
          fmt_ratio(ours_bald.seconds / log_pass.seconds), "-", "-"]])

    # 3. BaaL ------------------------------------------------------------------------
    baal_rows, baal_notes = _against_baal(s, args, probs_N_K_C, ours_bald, ours_power, repeats)
    print_table("Against BaaL on the same array (BaaL takes [N, C, K]; the transpose is made before timing)",
                ["comparison", "ours", "BaaL", "ratio", "aim", "PASS/MISS"], baal_rows)
    for note in baal_notes:
        print(f"  {note}")

    # 4. PowerBALD against BatchBALD on a small pool ---------------------------------------
    small_power = measure("power_bald (small pool)", "", lambda: power_bald.select(
        small_outputs, s.batchbald_batch, random_state=args.seed), nbytes(small_probs_N_K_C), repeats,
        memory=False)
    redux, redux_indices = _batchbald_redux(s, small_probs_N_K_C, repeats)
    ours_indices = np.asarray(ours_batchbald.timing.result)
    aim_text = f"<={STOCHASTIC_VS_BATCHBALD_AIM:g}"
    bb_rows = [
        ratio_row("PowerBALD / BatchBALD (ours)", small_power, ours_batchbald, STOCHASTIC_VS_BATCHBALD_AIM,
                  aim_text),
        ratio_row("PowerBALD / BatchBALD (batchbald_redux)", small_power, redux, STOCHASTIC_VS_BATCHBALD_AIM,
                  aim_text),
        ratio_row("BatchBALD ours / batchbald_redux", ours_batchbald, redux, PEER_AIM, f"<={PEER_AIM:g}"),
    ]
    print_table(f"PowerBALD against BatchBALD (N={s.batchbald_n:,} K={s.k} C={s.c} B={s.batchbald_batch}, "
                f"num_samples={s.batchbald_samples:,}; batchbald_redux in torch float64)",
                ["comparison", "first", "second", "ratio", "aim", "PASS/MISS"], bb_rows)
    if redux_indices is not None:
        same = len(set(ours_indices.tolist()) & set(redux_indices))
        print(f"  BatchBALD batches: {same} of {s.batchbald_batch} items in common between ours and "
              f"batchbald_redux; first picks {int(ours_indices[0])} and {redux_indices[0]}")

    # 5. DPP ---------------------------------------------------------------------------
    dpp_rows, dpp_notes = _against_dppy(s, args, rng, ours_dpp, repeats)
    print_table("DPP: our greedy MAP (select) and dppy's exact k-DPP sampler (different tasks, see notes)",
                ["comparison", "ours", "other", "ratio", "aim", "PASS/MISS"], dpp_rows)
    for note in dpp_notes:
        print(f"  {note}")

    # 6. Influence -------------------------------------------------------------------
    print_table("Influence (ISAL, exact Hessian) on the pool",
                ["comparison", "time", "aim", "PASS/MISS"],
                [[f"influence_scores, pool {s.influence_pool:,}, D={s.influence_dim}",
                  fmt_seconds(ours_influence.seconds), f"<{INFLUENCE_SECONDS_AIM:g} s",
                  verdict(ours_influence.seconds, INFLUENCE_SECONDS_AIM)]])
    print(f"\nat the end, {load_line()}")
    if args.quick:
        print("(--quick: sizes are smaller than the issue's, so the absolute-time aims are not meaningful)")
    return 0


def _against_baal(s: Sizes, args, probs_N_K_C, ours_bald: Measured, ours_power: Measured, repeats):
    try:
        from baal.active.heuristics import BALD
    except ImportError:
        return ([ratio_row("BALD ours / BaaL", None, None, PEER_AIM, f"<={PEER_AIM:g}"),
                 ratio_row("PowerBALD ours / BaaL", None, None, PEER_AIM, f"<={PEER_AIM:g}"),
                 ["BALD max |ours - BaaL|", "-", "-", NOT_INSTALLED, f"<={BALD_AGREEMENT_AIM:g}", "-"]], [])
    # BaaL 2.x spells PowerBALD as PowerSampling(BALD()); older releases had PowerBALD.
    try:
        from baal.active.heuristics import PowerBALD

        def make_power():
            return PowerBALD(query_size=s.batch, temperature=1.0)
        power_name = "PowerBALD"
    except ImportError:
        from baal.active.heuristics.stochastics import PowerSampling

        def make_power():
            return PowerSampling(BALD(), query_size=s.batch, temperature=1.0)
        power_name = "PowerSampling(BALD(), temperature=1)"

    preds_N_C_K = np.ascontiguousarray(probs_N_K_C.transpose(0, 2, 1))
    theirs_bald = measure("BaaL BALD", "", lambda: BALD().get_uncertainties(preds_N_C_K),
                          nbytes(preds_N_C_K), repeats)
    # BaaL samples with numpy's global RNG; it is left as it is.
    theirs_power = measure("BaaL power", "", lambda: make_power().get_ranks(preds_N_C_K)[0][: s.batch],
                           nbytes(preds_N_C_K), repeats)
    diff = float(np.max(np.abs(BALD().get_uncertainties(preds_N_C_K) - our_bald.bald(probs_N_K_C))))
    rows = [
        ratio_row("BALD ours / BaaL", ours_bald, theirs_bald, PEER_AIM, f"<={PEER_AIM:g}"),
        ratio_row(f"PowerBALD ours / BaaL (B={s.batch})", ours_power, theirs_power, PEER_AIM,
                  f"<={PEER_AIM:g}"),
        ["BALD max |ours - BaaL|", "-", "-", f"{diff:.2e} nats", f"<={BALD_AGREEMENT_AIM:g}",
         verdict(diff, BALD_AGREEMENT_AIM)],
    ]
    notes = [
        f"BaaL's PowerBALD here is {power_name}, through get_ranks (scores, then np.random.choice).",
        f"peak extra memory: BaaL BALD {_x(theirs_bald.memory_x)} of its input (ours "
        f"{_x(ours_bald.memory_x)}); BaaL power {_x(theirs_power.memory_x)} (ours {_x(ours_power.memory_x)}).",
    ]
    return rows, notes


def _batchbald_redux(s: Sizes, small_probs_N_K_C, repeats):
    try:
        import torch
        from batchbald_redux.batchbald import get_batchbald_batch
    except ImportError:
        return None, None
    # The log is taken before timing: batchbald_redux wants log-probabilities, our BatchBALD probabilities.
    log_probs_N_K_C = torch.from_numpy(np.log(small_probs_N_K_C))

    def run():
        return get_batchbald_batch(log_probs_N_K_C, s.batchbald_batch, s.batchbald_samples,
                                   dtype=torch.double)

    measured = measure("batchbald_redux", "", run, nbytes(log_probs_N_K_C), repeats, memory=False)
    return measured, list(measured.timing.result.indices)


def _log_det(L_N_N: np.ndarray, idx) -> float:
    sign, logdet = np.linalg.slogdet(L_N_N[np.ix_(idx, idx)])
    return float(logdet) if sign > 0 else float("-inf")


def _against_dppy(s: Sizes, args, rng, ours_dpp: Measured, repeats):
    rows = [[f"select N={s.n:,} D={s.dim} B={s.batch}", fmt_seconds(ours_dpp.seconds), "-", "-",
             f"<{DPP_SECONDS_AIM:g} s", verdict(ours_dpp.seconds, DPP_SECONDS_AIM)]]
    notes = []
    emb_N_D = make_embeddings(rng, s.dppy_n, s.dim)
    quality_N = dpp_quality(_softmax_last(rng.normal(size=(s.dppy_n, s.c)) * rng.uniform(0.3, 4.0, (s.dppy_n, 1))))
    ours = measure("ours", "", lambda: our_dpp.select(emb_N_D, s.dppy_batch, quality_N=quality_N),
                   nbytes(emb_N_D, quality_N), repeats, memory=False)
    try:
        from dppy.finite_dpps import FiniteDPP
    except ImportError:
        rows.append([f"select / dppy k-DPP sample, N={s.dppy_n:,} k={s.dppy_batch}",
                     fmt_seconds(ours.seconds), "-", NOT_INSTALLED, "-", "-"])
        return rows, notes
    # The same kernel select works with, made in full: L = diag(q) S diag(q), S the cosine similarity.
    unit_N_D = emb_N_D / np.linalg.norm(emb_N_D, axis=1, keepdims=True)
    L_N_N = (quality_N[:, None] * (unit_N_D @ unit_N_D.T)) * quality_N[None, :]
    L_N_N = 0.5 * (L_N_N + L_N_N.T)
    # dppy takes a legacy RandomState.
    sampler_rng = np.random.RandomState(args.seed)

    def fresh():
        return FiniteDPP("likelihood", L=L_N_N).sample_exact_k_dpp(size=s.dppy_batch,
                                                                    random_state=sampler_rng)

    cached = FiniteDPP("likelihood", L=L_N_N)
    cached.sample_exact_k_dpp(size=s.dppy_batch, random_state=sampler_rng)

    def again():
        return cached.sample_exact_k_dpp(size=s.dppy_batch, random_state=sampler_rng)

    theirs_fresh = measure("dppy", "", fresh, nbytes(L_N_N), repeats, memory=False)
    theirs_cached = measure("dppy cached", "", again, nbytes(L_N_N), repeats, memory=False)
    label = f"N={s.dppy_n:,} D={s.dim} k={s.dppy_batch}"
    rows.append([f"select / dppy sample incl. eigendecomposition, {label}", fmt_seconds(ours.seconds),
                 fmt_seconds(theirs_fresh.seconds), fmt_ratio(ours.seconds / theirs_fresh.seconds), "-", "-"])
    rows.append([f"select / dppy sample, eigendecomposition cached, {label}", fmt_seconds(ours.seconds),
                 fmt_seconds(theirs_cached.seconds), fmt_ratio(ours.seconds / theirs_cached.seconds), "-", "-"])
    ours_idx = our_dpp.select(emb_N_D, s.dppy_batch, quality_N=quality_N)
    sample_logdets = [_log_det(L_N_N, fresh()) for _ in range(5)]
    notes.append("dppy draws a random set with P(Y) proportional to det(L_Y); select returns the greedy "
                 "most likely set. Timing excludes building dppy's N x N kernel; select never builds it.")
    notes.append(f"log det L_Y: greedy select {_log_det(L_N_N, ours_idx):.1f}; five dppy samples "
                 + ", ".join(f"{v:.1f}" for v in sample_logdets))
    notes.append(f"k={s.dppy_batch} because the cosine kernel of D={s.dim} has rank <= {s.dim}: "
                 "a k-DPP with a larger k does not exist.")
    return rows, notes


if __name__ == "__main__":
    sys.exit(main())

"""Coreset, TypiClust, ProbCover and BADGE: against scikit-activeml and brute force on small cases."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from assay import strategies
from assay.strategies import ModelOutputs, StrategyInputError
from assay.strategies import small_budget as sb

try:
    import skactiveml.pool as skpool
except ImportError:  # pragma: no cover - depends on the environment
    skpool = None

needs_skactiveml = pytest.mark.skipif(skpool is None, reason="scikit-activeml is not installed: no comparison")


def _data(n=60, n_labeled=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + n_labeled, d))
    return X[:n], X[n:]


def _sk_inputs(pool, labeled):
    """scikit-activeml's (X, y): pool rows first (unlabeled, NaN), then the labeled rows."""
    X = np.vstack([pool, labeled])
    y = np.full(len(X), np.nan)
    y[len(pool):] = 0
    return X, y


# -- Coreset ---------------------------------------------------------------

@needs_skactiveml
def test_coreset_matches_skactiveml_with_labeled_items():
    pool, labeled = _data()
    X, y = _sk_inputs(pool, labeled)
    theirs = skpool.CoreSet(random_state=0).query(X, y, batch_size=8)
    ours, scores = sb.coreset(pool, 8, labeled)
    assert list(ours) == list(theirs)
    assert np.all(scores > 0) and np.all(np.diff(scores) <= 1e-12)  # k-center distances never grow


@needs_skactiveml
def test_coreset_cold_start_matches_skactiveml_from_the_same_first_item():
    pool, _ = _data(n=50, n_labeled=0)
    ours, scores = sb.coreset(pool, 6, random_state=3)
    assert scores[0] == 0
    y = np.full(len(pool), np.nan)
    y[ours[0]] = 0  # scikit-activeml starts from a labeled item: give it our first pick
    theirs = skpool.CoreSet(random_state=0).query(pool, y, batch_size=5)
    assert list(ours[1:]) == list(theirs)


def test_coreset_is_greedy_k_center_by_brute_force():
    pool, labeled = _data(n=9, n_labeled=1, d=2, seed=5)
    ours, scores = sb.coreset(pool, 3, labeled)
    centres = [labeled[0]]
    for j, s in zip(ours, scores):
        nearest = cdist(pool, np.array(centres)).min(axis=1)
        assert nearest[j] == pytest.approx(nearest.max()) and s == pytest.approx(nearest.max())
        centres.append(pool[j])

    def radius(subset):
        return cdist(pool, np.vstack([labeled, pool[list(subset)]])).min(axis=1).max()

    best = min(radius(s) for s in itertools.combinations(range(len(pool)), 3))
    assert radius(ours) <= 2 * best + 1e-12  # greedy k-center is a 2-approximation


def test_coreset_refuses_mismatched_labeled_columns():
    pool, labeled = _data()
    with pytest.raises(StrategyInputError, match="labeled_embeddings_L_D"):
        sb.coreset(pool, 2, labeled[:, :2])


def test_registry_passes_labeled_embeddings():
    pool, labeled = _data()
    sel = strategies.get("coreset").select(ModelOutputs(embeddings_N_D=pool, labeled_embeddings_L_D=labeled), 4)
    assert list(sel.indices) == list(sb.coreset(pool, 4, labeled)[0])


# -- TypiClust -------------------------------------------------------------

@needs_skactiveml
def test_typicality_matches_skactiveml():
    from skactiveml.pool._typi_clust import _typicality

    X, _ = _data(n=40, n_labeled=0, seed=2)
    for k in (1, 5, 20, 50):
        np.testing.assert_allclose(sb.typicality(X, k), _typicality(X, np.arange(len(X)), k), rtol=1e-9)


@needs_skactiveml
@pytest.mark.parametrize("n_labeled", [0, 4])
def test_typiclust_same_clusters_same_typical_items_as_skactiveml(n_labeled):
    from sklearn.datasets import make_blobs

    X_all, _ = make_blobs(n_samples=[40, 32, 25, 18, 12, 7, 5, 3], n_features=5, cluster_std=1.0,
                          random_state=0)
    X_all = X_all[np.random.default_rng(0).permutation(len(X_all))]
    pool, labeled = X_all[:len(X_all) - n_labeled], X_all[len(X_all) - n_labeled:]
    batch = 5
    ours, scores = sb.typiclust(pool, batch, labeled if n_labeled else None, k=20, random_state=7)
    seed = int(np.random.default_rng(7).integers(2**31 - 1))  # the KMeans seed typiclust draws
    X, y = _sk_inputs(pool, labeled)
    theirs = skpool.TypiClust(random_state=seed, k=20, cluster_algo_dict={"n_init": 1, "max_iter": 300}) \
        .query(X, y, batch_size=batch)
    assert sorted(ours) == sorted(theirs)
    assert np.all(scores > 0)


def test_typiclust_picks_the_most_typical_item_of_the_largest_uncovered_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [100, 0], [0, 100]])
    sizes = [30, 20, 10]
    pool = np.vstack([c + rng.standard_normal((s, 2)) for c, s in zip(centres, sizes)])
    labeled = centres[:1] + 0.1  # covers the largest blob
    ours, _ = sb.typiclust(pool, 2, labeled, k=20, random_state=0)
    # 3 clusters (1 labeled + 2): the blobs. The largest uncovered is blob 1, then blob 2.
    for j, (lo, hi) in zip(ours, [(30, 50), (50, 60)]):
        members = np.arange(lo, hi)
        assert j == members[np.argmax(sb.typicality(pool[members], 20))]


def test_typiclust_minibatch_kmeans_on_large_pools_is_seeded():
    pool, labeled = _data(n=300, n_labeled=2, d=3)
    a = sb.typiclust(pool, 6, labeled, random_state=2, minibatch_above=50)
    b = sb.typiclust(pool, 6, labeled, random_state=2, minibatch_above=50)
    assert list(a[0]) == list(b[0]) and len(set(a[0].tolist())) == 6 and np.all(a[1] > 0)


# -- ProbCover -------------------------------------------------------------

@needs_skactiveml
@pytest.mark.parametrize("n_labeled", [0, 3])
@pytest.mark.filterwarnings("ignore:The maximum purity")
def test_probcover_greedy_matches_skactiveml_step_by_step(n_labeled):
    pool, labeled = _data(n=70, n_labeled=n_labeled, d=3, seed=4)
    delta = 0.9
    ours, scores = sb.probcover(pool, 6, labeled if n_labeled else None, delta=delta, candidates=None)
    X, y = _sk_inputs(pool, labeled)
    theirs, util = skpool.ProbCover(deltas=[delta], random_state=0).query(X, y, batch_size=6,
                                                                           return_utilities=True)
    # Identical up to the first tie for the best count (there each breaks ties its own way).
    for b in range(6):
        best = np.nanmax(util[b])
        assert util[b][ours[b]] == best and scores[b] == best
        if np.sum(util[b] == best) > 1:
            break
        assert ours[b] == theirs[b]
    # Every step is a greedy max-coverage step given our own earlier picks.
    for b in range(6):
        y_b = y.copy()
        y_b[ours[:b]] = 0
        _, u = skpool.ProbCover(deltas=[delta], random_state=0).query(X, y_b, batch_size=1, return_utilities=True)
        assert u[0][ours[b]] == np.nanmax(u[0]) == scores[b]


def test_probcover_covers_separated_blobs_largest_first_then_random():
    rng = np.random.default_rng(0)
    sizes = [12, 9, 6]
    pool = np.vstack([np.array([50.0 * i, 0]) + 0.1 * rng.standard_normal((s, 2)) for i, s in enumerate(sizes)])
    idx, scores = sb.probcover(pool, 5, delta=5.0, candidates=None, random_state=0)
    assert list(scores) == [12, 9, 6, 0, 0]
    assert list(idx[:3]) == [0, 12, 21]  # lowest index of each blob (ties)
    assert len(set(idx.tolist())) == 5
    labeled = np.array([[0.0, 0.0]])
    idx, scores = sb.probcover(pool, 2, labeled, delta=5.0, candidates=None)
    assert list(scores) == [9, 6]


def test_probcover_default_delta_and_bad_delta():
    pool, _ = _data(n=200, n_labeled=0, d=3)
    delta = sb.default_delta(pool, k=20, random_state=0)
    within = (cdist(pool, pool) <= delta).sum(axis=1) - 1
    assert 10 <= np.median(within) <= 30  # a typical ball holds about k others
    with pytest.raises(StrategyInputError, match="delta"):
        sb.probcover(pool, 2, delta=-1.0)
    with pytest.raises(StrategyInputError, match="smaller delta"):
        old = sb.MAX_EDGES
        sb.MAX_EDGES = 100
        try:
            sb.probcover(pool, 2, delta=10.0)
        finally:
            sb.MAX_EDGES = old


def test_probcover_centres_only_candidates():
    pool, _ = _data(n=300, n_labeled=0, d=3)
    idx, _ = sb.probcover(pool, 5, candidates=20, random_state=1)
    idx2, _ = sb.probcover(pool, 5, candidates=20, random_state=1)
    assert list(idx) == list(idx2) and len(set(idx.tolist())) == 5


# -- BADGE -----------------------------------------------------------------

def _gradient_embeddings(probs, features):
    """g_x = (p - onehot(argmax p)) (x) h, built explicitly, as scikit-activeml does."""
    factor = probs - np.eye(probs.shape[1])[probs.argmax(axis=1)]
    return (factor[:, :, None] * features[:, None, :]).reshape(len(probs), -1)


def _probs_and_features(n=30, c=3, h=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(c), size=n), rng.standard_normal((n, h))


def test_badge_scores_are_d2_over_explicit_gradient_embeddings():
    probs, feats = _probs_and_features()
    g = _gradient_embeddings(probs, feats)
    idx, scores = sb.badge(probs, feats, 6, random_state=0)
    assert idx[0] == np.argmax((g ** 2).sum(axis=1)) and scores[0] == pytest.approx((g[idx[0]] ** 2).sum())
    for b in range(1, 6):
        d2 = (cdist(g, g[idx[:b]]) ** 2).min(axis=1)
        assert scores[b] == pytest.approx(d2[idx[b]], rel=1e-9, abs=1e-12)


def test_badge_second_pick_follows_the_d2_distribution():
    probs, feats = _probs_and_features(n=12)
    g = _gradient_embeddings(probs, feats)
    first = np.argmax((g ** 2).sum(axis=1))
    d2 = ((g - g[first]) ** 2).sum(axis=1)
    expected = d2 / d2.sum()
    draws = 3000
    counts = np.bincount([sb.badge(probs, feats, 2, random_state=s)[0][1] for s in range(draws)], minlength=12)
    assert counts[first] == 0
    assert 0.5 * np.abs(counts / draws - expected).sum() < 0.04  # total variation


@needs_skactiveml
def test_badge_first_pick_and_d2_match_skactiveml():
    from sklearn.linear_model import LogisticRegression
    from skactiveml.classifier import SklearnClassifier

    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 4))
    y = np.full(50, np.nan)
    y[:12] = rng.integers(0, 3, 12)
    clf = SklearnClassifier(LogisticRegression(), classes=[0, 1, 2], random_state=0).fit(X, y)
    pool = X[12:]
    probs = clf.predict_proba(pool)
    theirs, util = skpool.Badge(random_state=0).query(X, y, clf, batch_size=3, return_utilities=True)
    ours, scores = sb.badge(probs, pool, 3, random_state=0)
    assert ours[0] + 12 == theirs[0]
    # After the same first pick, their sampling distribution is D^2, normalised. One difference:
    # scikit-activeml also keeps the origin as a centre (D^2 = min(|g|^2, |g - g_first|^2)); the
    # paper's code (JordanAsh/badge, init_centers) and ours measure from the picks only.
    g = _gradient_embeddings(probs, pool)
    d2 = ((g - g[ours[0]]) ** 2).sum(axis=1)
    theirs_d2 = np.minimum(d2, (g ** 2).sum(axis=1))
    expected = theirs_d2 / theirs_d2.sum()
    expected[ours[0]] = np.nan
    np.testing.assert_allclose(util[1][12:], expected, rtol=1e-7, atol=1e-12)
    assert scores[1] == pytest.approx(d2[ours[1]])


def test_badge_all_confident_falls_back_to_uniform():
    probs = np.eye(3)[np.arange(9) % 3]
    idx, scores = sb.badge(probs, np.ones((9, 2)), 4, random_state=0)
    assert len(set(idx.tolist())) == 4 and np.all(scores == 0)


def test_badge_refuses_logits_and_row_mismatch():
    probs, feats = _probs_and_features()
    with pytest.raises(StrategyInputError, match="logits"):
        sb.badge(probs - 0.5, feats, 2)
    with pytest.raises(StrategyInputError, match="rows"):
        sb.badge(probs, feats[:-1], 2)

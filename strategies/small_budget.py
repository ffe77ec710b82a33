"""Strategies for the small-budget regime: Coreset, TypiClust, ProbCover and BADGE.

All four work on embeddings (one row per pool item); Coreset, TypiClust and
ProbCover also take the labeled items' embeddings, if any, so that what is
already labeled counts as covered. Without them they cold-start from the pool.

Distances are Euclidean. Squared distances are computed as
``|x|^2 + |y|^2 - 2 x.y`` (a matrix product, in the embeddings' own float
type), combined in float64 and clamped at zero; the rounding this brings only
matters between near-ties.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from ._checks import StrategyInputError, as_rng, check_batch, check_matrix, check_probs

# Rows of a distance block: a block against a 100k pool is 100 MB of float64.
BLOCK = 128


def _embeddings(name, array) -> np.ndarray:
    arr = check_matrix(name, array)
    return arr


def _pool_and_labeled(embeddings_N_D, labeled_L_D):
    X = _embeddings("embeddings_N_D", embeddings_N_D)
    if labeled_L_D is None:
        return X, X[:0]
    L = _embeddings("labeled_embeddings_L_D", labeled_L_D)
    if L.shape[1] != X.shape[1]:
        raise StrategyInputError(
            f"labeled_embeddings_L_D has {L.shape[1]} columns but embeddings_N_D has {X.shape[1]}"
        )
    if L.dtype != X.dtype:
        L = L.astype(np.result_type(L.dtype, X.dtype))
        X = X.astype(L.dtype)
    return X, L


def _sq_norms(X) -> np.ndarray:
    return np.einsum("nd,nd->n", X, X, dtype=np.float64)


def _sq_dist_block(A, sqA, B, sqB) -> np.ndarray:
    """Squared distances between the rows of A and of B, float64, clamped at 0."""
    d2 = (A @ B.T).astype(np.float64)
    d2 *= -2.0
    d2 += sqA[:, None]
    d2 += sqB[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _sq_dist_to(X, sqX, j_vec, sq_j) -> np.ndarray:
    d2 = (X @ j_vec).astype(np.float64)
    d2 *= -2.0
    d2 += sqX
    d2 += sq_j
    np.maximum(d2, 0.0, out=d2)
    return d2


# -- Coreset ---------------------------------------------------------------


def coreset(embeddings_N_D, batch_size, labeled_embeddings_L_D=None, random_state=None):
    """k-center greedy (Sener & Savarese 2018): ``(indices, scores)``, in selection order.

    Each step picks the pool item farthest from its nearest labeled-or-picked
    item (ties go to the lower index); its score is that distance. Without
    labeled items the first pick is drawn uniformly with ``random_state`` and
    scores 0 (nothing to be far from). O(N D (L + B)) time, O(N) extra memory.
    """
    X, L = _pool_and_labeled(embeddings_N_D, labeled_embeddings_L_D)
    n = X.shape[0]
    batch_size = check_batch(batch_size, n)
    rng = as_rng(random_state)
    sqX = _sq_norms(X)
    min_d2 = np.full(n, np.inf)
    if len(L):
        sqL = _sq_norms(L)
        for start in range(0, len(L), BLOCK):
            block = _sq_dist_block(X, sqX, L[start:start + BLOCK], sqL[start:start + BLOCK])
            np.minimum(min_d2, block.min(axis=1), out=min_d2)
    chosen = np.empty(batch_size, dtype=np.intp)
    scores = np.empty(batch_size)
    for b in range(batch_size):
        if b == 0 and not len(L):
            j = int(rng.integers(n))
            scores[b] = 0.0
        else:
            j = int(np.argmax(min_d2))
            scores[b] = np.sqrt(min_d2[j])
        chosen[b] = j
        np.minimum(min_d2, _sq_dist_to(X, sqX, X[j], sqX[j]), out=min_d2)
        min_d2[chosen[:b + 1]] = -1.0  # never again, even where every distance left is 0
    return chosen, scores


# -- TypiClust -------------------------------------------------------------


def typicality(X_M_D, k=20) -> np.ndarray:
    """1 / mean distance to the ``k`` nearest other rows (k capped at M - 1); 1 for a single row.

    As in the paper's code and scikit-activeml: the sum of the k+1 smallest
    distances (self included, at 0) plus 1e-7, divided by k, inverted.
    Exact, O(M^2 D) time in row blocks.
    """
    m = X_M_D.shape[0]
    if m == 1:
        return np.ones(1)
    k = min(int(k), m - 1)
    sq = _sq_norms(X_M_D)
    out = np.empty(m)
    for start in range(0, m, BLOCK):
        stop = min(start + BLOCK, m)
        d2 = _sq_dist_block(X_M_D[start:stop], sq[start:stop], X_M_D, sq)
        d2[np.arange(stop - start), np.arange(start, stop)] = 0.0
        near = np.partition(d2, k, axis=1)[:, :k + 1]
        out[start:stop] = k / (np.sqrt(near).sum(axis=1) + 1e-7)
    return out


def _typiclust_pick(X, clusters_pool, sizes, covered, batch_size, k):
    sizes = np.array(sizes, dtype=float)
    sizes[np.asarray(list(covered), dtype=np.intp)] = 0
    # Cluster sizes may count labeled items, but a non-covered cluster has none,
    # so its pool members are all its members.
    order = np.lexsort((np.arange(len(sizes)), -sizes))
    chosen, scores = [], []
    for cid in order:
        if len(chosen) == batch_size or sizes[cid] == 0:
            break
        members = np.flatnonzero(clusters_pool == cid)
        if not len(members):
            continue
        typ = typicality(X[members], k)
        best = int(np.argmax(typ))
        chosen.append(int(members[best]))
        scores.append(float(typ[best]))
    return np.array(chosen, dtype=np.intp), np.array(scores)


# Above this many points (pool + labeled), TypiClust clusters with MiniBatchKMeans, as the
# paper's code does for many clusters: Lloyd's KMeans takes minutes on 100k x 384 with 100+ clusters.
MINIBATCH_ABOVE = 20_000
# ...and fits it on this many of them (every labeled point plus a random sample of the pool), then
# assigns every point to its nearest centre. k-means++ seeding over all 100k points was most of a
# 7 s call with 450 clusters; a sample this size still holds ~40 points per cluster at that count.
MINIBATCH_SAMPLE = 20_000
_ASSIGN_ROWS = 8192


def typiclust(embeddings_N_D, batch_size, labeled_embeddings_L_D=None, k=20, random_state=None,
              max_iter=300, minibatch_above=MINIBATCH_ABOVE):
    """TypiClust (Hacohen et al. 2022): ``(indices, scores)``, largest cluster first.

    KMeans (k-means++, one init, seeded from ``random_state``) cuts pool and labeled
    embeddings together into L + B clusters; above ``minibatch_above`` points,
    MiniBatchKMeans (batches of 2,048) fits the centres on every labeled point and a
    random pool sample (``MINIBATCH_SAMPLE`` points in all) and every point joins its
    nearest centre; from each of the B largest
    clusters without a labeled item it takes the most typical item. If KMeans
    leaves fewer non-empty uncovered clusters (duplicate points), the rest of
    the batch is drawn at random from the pool and scores 0.

    Typicality is exact within a cluster (O(size^2 D)); a batch of one on a
    large pool makes one huge cluster and is slow.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    X, L = _pool_and_labeled(embeddings_N_D, labeled_embeddings_L_D)
    n = X.shape[0]
    batch_size = check_batch(batch_size, n)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise StrategyInputError(f"k must be a positive integer, got {k!r}")
    rng = as_rng(random_state)
    seed = int(rng.integers(2**31 - 1))
    X_all = np.vstack([X, L]) if len(L) else X
    n_clusters = len(L) + batch_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if len(X_all) > minibatch_above:
            sample = _clustering_sample(n, len(L), n_clusters, rng)
            km = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=1, batch_size=2048,
                                 max_iter=int(max_iter), init_size=min(len(sample), max(3 * n_clusters, 2048)))
            km.fit(X_all[sample])
            labels = _nearest_centre(X_all, km.cluster_centers_)
        else:
            km = KMeans(n_clusters=n_clusters, random_state=seed, n_init=1, max_iter=int(max_iter))
            labels = km.fit_predict(X_all)
    sizes = np.bincount(labels, minlength=n_clusters)
    covered = set(np.unique(labels[n:]).tolist())
    idx, scores = _typiclust_pick(X, labels[:n], sizes, covered, batch_size, k)
    return _fill_at_random(idx, scores, n, batch_size, rng)


def _clustering_sample(n_pool: int, n_labeled: int, n_clusters: int, rng) -> np.ndarray:
    """Rows of [pool; labeled] to fit the clustering on: all labeled rows and a random share of the pool."""
    take = min(n_pool, max(MINIBATCH_SAMPLE - n_labeled, 40 * n_clusters))
    pool_rows = np.sort(rng.choice(n_pool, size=take, replace=False))
    return np.concatenate([pool_rows, n_pool + np.arange(n_labeled)])


def _nearest_centre(X, centres_K_D) -> np.ndarray:
    """The index of each row's nearest centre, by blocks of rows (in X's float dtype)."""
    C = centres_K_D.astype(X.dtype)
    sqC = np.einsum("kd,kd->k", C, C)
    out = np.empty(len(X), dtype=np.intp)
    for start in range(0, len(X), _ASSIGN_ROWS):
        block = X[start:start + _ASSIGN_ROWS]
        out[start:start + len(block)] = np.argmin(sqC[None, :] - 2.0 * (block @ C.T), axis=1)
    return out


def _fill_at_random(idx, scores, n: int, batch_size: int, rng):
    """Pad a batch that ran out of clusters or uncovered items with random others (score 0)."""
    if len(idx) >= batch_size:
        return idx, scores
    rest = np.setdiff1d(np.arange(n), idx)
    extra = rng.choice(rest, size=batch_size - len(idx), replace=False)
    return np.concatenate([idx, extra]).astype(np.intp), np.concatenate([scores, np.zeros(len(extra))])


# -- ProbCover -------------------------------------------------------------

# A delta whose balls hold more pairs than this is refused: the graph would not fit in memory.
MAX_EDGES = 60_000_000


def default_delta(embeddings_N_D, k=20, sample=500, random_state=None) -> float:
    """The median, over ``sample`` random pool items, of the distance to their k-th nearest other item.

    So a typical ball holds about k items besides its centre. (The paper picks
    the largest delta whose balls stay 95% pure w.r.t. a k-means clustering into
    as many clusters as classes; that needs the class count and an O(N^2) sweep.)
    """
    X = _embeddings("embeddings_N_D", embeddings_N_D)
    n = X.shape[0]
    if n < 2:
        return 0.0
    k = min(int(k), n - 1)
    rng = as_rng(random_state)
    rows = np.sort(rng.choice(n, size=min(int(sample), n), replace=False))
    sq = _sq_norms(X)
    kth = []
    for start in range(0, len(rows), BLOCK):
        r = rows[start:start + BLOCK]
        d2 = _sq_dist_block(X[r], sq[r], X, sq)
        d2[np.arange(len(r)), r] = 0.0
        kth.append(np.partition(d2, k, axis=1)[:, k])
    return float(np.sqrt(np.median(np.concatenate(kth))))


def _ball_graph(X, sqX, centres, delta):
    """CSR (len(centres) x N): row i marks the pool items within delta of X[centres[i]]."""
    d_lim = delta * delta
    sq_own = sqX.astype(X.dtype)
    indptr = [0]
    cols = []
    total = 0
    for start in range(0, len(centres), BLOCK):
        c = centres[start:start + BLOCK]
        # In the embeddings' own float type, in place: the graph is the memory-bound part.
        d2 = X[c] @ X.T
        d2 *= -2
        d2 += sq_own
        d2 += sq_own[c][:, None]
        d2[np.arange(len(c)), c] = 0
        r, col = np.nonzero(d2 <= d_lim)
        total += len(col)
        if total > MAX_EDGES:
            raise StrategyInputError(
                f"probcover delta={delta:.4g} puts more than {MAX_EDGES:,} pairs within reach; use a smaller delta"
            )
        cols.append(col.astype(np.int32))
        indptr.extend((indptr[-1] + np.cumsum(np.bincount(r, minlength=len(c)))).tolist())
    data_cols = np.concatenate(cols) if cols else np.empty(0, np.int32)
    return sp.csr_matrix((np.ones(len(data_cols), dtype=np.int32), data_cols, np.array(indptr)),
                         shape=(len(centres), X.shape[0]))


def probcover(embeddings_N_D, batch_size, labeled_embeddings_L_D=None, delta=None, candidates=2_000,
              random_state=None):
    """ProbCover (Yehuda et al. 2022): ``(indices, scores)``, in selection order.

    Greedy max coverage: each step picks the candidate whose delta-ball holds
    the most pool items not yet covered (ties to the lower index); its score is
    that count. Items within delta of a labeled item start covered. Once all is
    covered the rest of the batch is drawn at random and scores 0.

    ``delta`` defaults to :func:`default_delta`. Balls are centred on
    ``candidates`` random pool items (None: every item; the exact algorithm)
    and count coverage over the whole pool: O(candidates N D) time.
    """
    X, L = _pool_and_labeled(embeddings_N_D, labeled_embeddings_L_D)
    n = X.shape[0]
    batch_size = check_batch(batch_size, n)
    rng = as_rng(random_state)
    if delta is None:
        delta = default_delta(X, random_state=rng)
    delta = float(delta)
    if not np.isfinite(delta) or delta < 0:
        raise StrategyInputError(f"delta must be a finite non-negative number, got {delta!r}")
    if candidates is None or candidates >= n:
        centres = np.arange(n)
    else:
        centres = np.sort(rng.choice(n, size=max(int(candidates), batch_size), replace=False))
    sqX = _sq_norms(X)
    uncovered = np.ones(n, dtype=bool)
    if len(L):
        sqL = _sq_norms(L)
        for start in range(0, len(L), BLOCK):
            d2 = _sq_dist_block(L[start:start + BLOCK], sqL[start:start + BLOCK], X, sqX)
            uncovered &= ~(d2 <= delta * delta).any(axis=0)
    balls = _ball_graph(X, sqX, centres, delta)  # centres x pool
    members = balls.T.tocsr()  # pool item -> centres whose ball holds it
    counts = (balls @ uncovered.astype(np.int64)).astype(np.int64)
    chosen, scores = [], []
    taken = np.zeros(len(centres), dtype=bool)
    while len(chosen) < batch_size:
        masked = np.where(taken, -1, counts)
        i = int(np.argmax(masked))
        if masked[i] <= 0:
            break
        taken[i] = True
        chosen.append(int(centres[i]))
        scores.append(float(counts[i]))
        ball = balls.indices[balls.indptr[i]:balls.indptr[i + 1]]
        newly = ball[uncovered[ball]]
        uncovered[newly] = False
        if len(newly):
            hit = np.concatenate([members.indices[members.indptr[u]:members.indptr[u + 1]] for u in newly])
            counts -= np.bincount(hit, minlength=len(centres))
    idx = np.array(chosen, dtype=np.intp)
    scores = np.array(scores)
    return _fill_at_random(idx, scores, n, batch_size, rng)


# -- BADGE -----------------------------------------------------------------


def badge(probs_N_C, features_N_H, batch_size, random_state=None):
    """BADGE (Ash et al. 2020): k-means++ seeding on gradient embeddings; ``(indices, scores)``.

    ``g_x = (p - onehot(argmax p)) (x) h(x)``, the last linear layer's loss
    gradient for the pseudo-label. ``g`` is never built: ``|g_i - g_j|^2 =
    |a_i|^2 |h_i|^2 + |a_j|^2 |h_j|^2 - 2 (a_i.a_j)(h_i.h_j)`` with ``a = p - onehot``,
    so each pick costs O(N (C + H)). The first pick is the largest ``|g|``
    (ties to the lower index); each next one is drawn with probability
    proportional to its squared distance D^2 to the nearest pick (uniformly
    among the rest if all D^2 are 0). The score is |g|^2, then D^2 at the draw.
    """
    P = check_probs("probs_N_C", probs_N_C, 2)
    H = _embeddings("features_N_H", features_N_H)
    n = P.shape[0]
    if H.shape[0] != n:
        raise StrategyInputError(f"features_N_H has {H.shape[0]} rows but probs_N_C has {n}")
    batch_size = check_batch(batch_size, n)
    rng = as_rng(random_state)
    A = np.array(P, dtype=np.float64)
    A[np.arange(n), A.argmax(axis=1)] -= 1.0
    sqA, sqH = _sq_norms(A), _sq_norms(H)  # H stays in its own float type: half the traffic in float32
    g2 = sqA * sqH
    chosen = np.empty(batch_size, dtype=np.intp)
    scores = np.empty(batch_size)
    min_d2 = np.full(n, np.inf)
    for b in range(batch_size):
        if b == 0 and g2.max() > 0:
            j = int(np.argmax(g2))
            scores[b] = g2[j]
        else:
            w = min_d2 if b else np.zeros(n)
            w = np.where(np.isfinite(w), w, 0.0)
            w[chosen[:b]] = 0.0
            total = w.sum()
            if not total > 0:
                w = np.ones(n)
                w[chosen[:b]] = 0.0
                total = w.sum()
            j = int(rng.choice(n, p=w / total))
            scores[b] = min_d2[j] if b and np.isfinite(min_d2[j]) else 0.0
        chosen[b] = j
        d2 = g2 + g2[j] - 2.0 * (A @ A[j]) * (H @ H[j]).astype(np.float64)
        np.maximum(d2, 0.0, out=d2)
        np.minimum(min_d2, d2, out=min_d2)
        min_d2[chosen[:b + 1]] = 0.0
    return chosen, scores

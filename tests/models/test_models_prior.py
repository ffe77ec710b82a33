"""LogisticRegression(l2="auto"): the prior precision is learned from the labeled rows at every fit."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification

from assay.models import LogisticRegression
from assay.models.logreg import holdout_folds, objective


def _blobs(n=200, d=8, c=4, spread=0.5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(c, size=n)
    return rng.normal(size=(c, d))[y] * 2 + spread * rng.normal(size=(n, d)), y


def test_auto_is_the_default_and_the_chosen_values_are_fitted_attributes():
    X, y = _blobs()
    model = LogisticRegression()
    assert model.get_params()["l2"] == "auto" and model.get_params()["intercept_scaling"] is None
    model.fit(X, y)
    assert model.l2 == "auto" and model.l2_ > 0
    rms = np.sqrt(np.mean(np.sum(X**2, axis=1)))
    assert model.intercept_scaling_ == pytest.approx(0.1 * rms)
    fixed = LogisticRegression(l2=0.5).fit(X, y)
    assert fixed.l2_ == 0.5 and fixed.intercept_scaling_ == 1.0  # a number keeps the old objective
    with pytest.raises(ValueError):
        LogisticRegression(l2="big").fit(X, y)
    with pytest.raises(ValueError):
        LogisticRegression(intercept_scaling=0.0).fit(X, y)


def test_the_prior_follows_the_data():
    """Clean, separated classes ask for a weak prior; labels unrelated to the features for a strong one."""
    X, y = _blobs(spread=0.3)
    clean = LogisticRegression().fit(X, y).l2_
    shuffled = LogisticRegression().fit(X, np.random.default_rng(1).permutation(y)).l2_
    assert shuffled > 30 * clean


def test_weights_minimize_the_objective_at_the_chosen_prior():
    """The influence contract: linear_head's W is the minimizer of sum CE + (l2/2)||W||^2 over its features."""
    X, y = _blobs(n=120, c=3, spread=1.0)
    model = LogisticRegression(tol=1e-8).fit(X, y)
    W, Phi, l2 = model.linear_head(X)
    assert l2 == model.l2_ and np.all(Phi[:, -1] == model.intercept_scaling_)
    _, grad = objective(W.ravel(), Phi, y, 3, l2)
    assert np.abs(grad).max() < 1e-5
    # The head reproduces predict_proba, intercept scaling included.
    logits = Phi @ W.T
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs / probs.sum(axis=1, keepdims=True), model.predict_proba(X), atol=1e-8)


def test_weights_and_hessian_use_the_chosen_prior():
    """The objective's weights and Hessian use l2_; the posterior samples' own prior is posterior_l2_
    (tests/models/test_models_posterior_prior.py)."""
    X, y = _blobs(n=40, d=2, c=3, spread=1.0)
    model = LogisticRegression(random_state=0).fit(X, y)
    reference = LogisticRegression(l2=model.l2_, intercept_scaling=model.intercept_scaling_, random_state=0).fit(X, y)
    np.testing.assert_allclose(model.W_, reference.W_, atol=1e-4)
    np.testing.assert_allclose(model.hessian(), reference.hessian(), rtol=1e-3, atol=1e-6)
    # Each posterior sample acts on the head features, bias column scaled like intercept_.
    Phi = np.hstack([X, np.full((len(X), 1), model.intercept_scaling_)])
    W_K_C_D = model.weight_samples(5)
    logits = np.einsum("nd,kcd->nkc", Phi, W_K_C_D)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(probs / probs.sum(axis=-1, keepdims=True), model.predict_proba_samples(X, 5), atol=1e-5)


def _embedding_like(n_classes=100, seed=0):
    """Many classes, rows mapped through a fixed random projection and L2-normalized, like text embeddings."""
    X, y = make_classification(n_samples=n_classes * 40, n_features=24, n_informative=12, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=2.0, random_state=seed)
    E = X @ np.random.default_rng(seed).normal(size=(24, 128))
    return E / np.linalg.norm(E, axis=1, keepdims=True), np.array([f"intent_{c}" for c in y])


def _drop_after_20_random_labels(l2, seeds=3):
    E, y = _embedding_like()
    pool, test = np.arange(len(y) // 2), np.arange(len(y) // 2, len(y))
    drops = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        first = np.array([rng.choice(pool[y[pool] == c]) for c in np.unique(y)])
        extra = rng.choice(np.setdiff1d(pool, first), 20, replace=False)
        acc = [np.mean(LogisticRegression(l2=l2).fit(E[idx], y[idx]).predict(E[test]) == y[test])
               for idx in (first, np.concatenate([first, extra]))]
        drops.append(acc[0] - acc[1])
    return float(np.mean(drops))


def test_a_fixed_strong_prior_collapses_on_many_classes():
    """The old default: 20 random labels on top of one per class cost ~0.16 accuracy (0.25 -> 0.10)."""
    assert _drop_after_20_random_labels(1.0) > 0.1


def test_the_learned_prior_does_not_collapse_on_many_classes():
    assert _drop_after_20_random_labels("auto") <= 0.01


def test_folds_keep_every_class_in_training():
    y = np.array([0] * 5 + [1] * 2 + [2] + [3] * 9)
    fold = holdout_folds(y, 3, np.random.default_rng(0))
    for c in np.unique(y):
        # One row of each class is never held out; a class with one label is never held out at all.
        assert np.sum((y == c) & (fold == -1)) == 1
    for f in range(3):
        assert set(y[fold != f]) == set(y)
    assert sorted(np.bincount(fold[fold >= 0])) == [4, 4, 5]  # balanced across folds


def _brute_force_fold_losses(Phi, y, fold, grid):
    """Held-out log-loss per l2, each fold fitted to convergence by scikit-learn on the same objective:
    no intercept of its own (the constant column is in Phi), C = 1/l2, the sum (not the mean) of losses."""
    from sklearn.linear_model import LogisticRegression as SkLogReg
    from threadpoolctl import threadpool_limits

    losses = []
    for l2 in grid:
        total = 0.0
        for f in np.unique(fold[fold >= 0]):
            test = fold == f
            with threadpool_limits(limits=1, user_api="blas"):  # on a busy 2-core machine threads cost 10x
                sk = SkLogReg(C=1.0 / l2, fit_intercept=False, tol=1e-8, max_iter=5000).fit(Phi[~test], y[~test])
            proba = sk.predict_proba(Phi[test])
            total -= np.sum(np.log(proba[np.arange(test.sum()), np.searchsorted(sk.classes_, y[test])]))
        losses.append(total / np.sum(fold >= 0))
    return np.array(losses)


@pytest.mark.parametrize("many_classes", [False, True])
def test_cross_validated_prior_matches_a_brute_force_search(many_classes):
    if many_classes:
        E, y = _embedding_like(n_classes=20)
        X, y = E[:60], np.unique(y[:60], return_inverse=True)[1]
    else:
        X, y = _blobs(n=80, d=6, c=3, spread=1.5, seed=3)
    model = LogisticRegression(random_state=0).fit(X, y)
    assert model.l2_method_ == "cv"
    Phi = np.hstack([X, np.full((len(X), 1), model.intercept_scaling_)])
    fold = holdout_folds(np.unique(y, return_inverse=True)[1], 2, np.random.default_rng(0))
    grid = 10.0 ** np.arange(-2.0, 3.01, 0.5)  # the minimum is inside; smaller l2 is slow to converge
    brute = _brute_force_fold_losses(Phi, y, fold, grid)
    # The search evaluates a few grid points with early-stopped fits; it must land on the brute-force
    # minimum or on a point whose converged held-out loss is within 2% of it.
    chosen = brute[np.argmin(np.abs(np.log10(grid) - np.log10(model.l2_)))]
    assert chosen <= brute.min() * 1.02 + 1e-9, (model.l2_, grid[np.argmin(brute)], model.l2_path_)
    # The path reports the decades evaluated; the choice is within half a decade of their minimum.
    path_l2, path_loss = np.array(model.l2_path_).T
    assert abs(np.log10(model.l2_) - np.log10(path_l2[np.argmin(path_loss)])) <= 0.5 + 1e-9


def test_too_few_rows_to_hold_out_fall_back_to_the_evidence():
    X, y = _blobs(n=8, d=3, c=4, seed=2)
    y = np.repeat(np.arange(4), 2)  # one row per class can be held out: 4 < 6
    model = LogisticRegression().fit(X, y)
    assert model.l2_method_ == "evidence" and model.l2_ > 0
    assert LogisticRegression(l2=0.3).fit(X, y).l2_method_ == "fixed"


def test_many_class_fit_does_not_warn():
    E, y = _embedding_like(n_classes=50)
    names = y
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression().fit(E[:60], names[:60])  # 50 classes in 60 rows
        LogisticRegression().fit(E[:60], names[:60].astype(object))


def test_many_rows_cross_validate_on_a_subset_and_scale_the_prior(monkeypatch):
    """Above _CV_MAX_ROWS the folds use a subset keeping every class, and l2 grows with the rows it sums over."""
    import assay.models.logreg as logreg

    X, y = _blobs(n=400, d=5, c=4, spread=1.5, seed=4)
    monkeypatch.setattr(logreg, "_CV_MAX_ROWS", 100)
    rows = logreg._cv_rows(y, 100, np.random.default_rng(0))
    assert len(rows) == 100 and set(y[rows]) == set(y)
    seen = {}
    real = logreg.cross_validated_l2

    def spy(Phi, y_N, num_classes, fold_N, **kw):
        seen["rows"] = len(y_N)
        seen["result"] = real(Phi, y_N, num_classes, fold_N, **kw)
        return seen["result"]

    monkeypatch.setattr(logreg, "cross_validated_l2", spy)
    model = LogisticRegression(random_state=0).fit(X, y)
    assert seen["rows"] == 100
    assert model.l2_ == pytest.approx(seen["result"][0] * 4)


def _retrain_sequence(X, y, sizes, carry: bool):
    l2s, previous = [], None
    for n in sizes:
        model = LogisticRegression(l2_previous=previous if carry else None, random_state=0).fit(X[:n], y[:n])
        assert model.l2_method_ == "cv"
        l2s.append(model.l2_)
        previous = model.l2_
    return np.array(l2s)


def test_retrains_smooth_the_prior_instead_of_following_each_new_split():
    """A retrain every 10 labels: with the last fit's prior passed on, log l2 moves a tenth of the way to each
    new minimum, so the jitter of each fit's random folds averages out instead of moving the model."""
    X, y = make_classification(n_samples=400, n_features=20, n_informative=5, flip_y=0.1, class_sep=0.8,
                               random_state=4)
    sizes = list(range(60, 201, 10))
    free = _retrain_sequence(X, y, sizes, carry=False)
    smooth = _retrain_sequence(X, y, sizes, carry=True)
    assert np.abs(np.diff(np.log10(smooth))).sum() < 0.3 * np.abs(np.diff(np.log10(free))).sum(), (free, smooth)
    # Each step is the rule: a tenth of the way from the previous prior to that fit's own minimum.
    for n, before, after in zip(sizes[1:], smooth[:-1], smooth[1:]):
        own = LogisticRegression(random_state=0).fit(X[:n], y[:n]).l2_
        expected = 0.9 * np.log10(before) + 0.1 * np.log10(own)
        assert abs(np.log10(after) - expected) < 0.02, (n, before, own, after)


def test_a_previous_prior_far_off_is_dropped_and_bad_values_are_refused():
    X, y = make_classification(n_samples=150, n_features=20, n_informative=5, flip_y=0.1, class_sep=0.8,
                               random_state=4)  # noisy labels: a clear minimum at a moderate prior
    free = LogisticRegression(random_state=0).fit(X, y)
    far = LogisticRegression(l2_previous=1e4, random_state=0).fit(X, y)  # a near-uniform model: far worse
    assert np.log10(far.l2_) == pytest.approx(np.log10(free.l2_), abs=0.02) and far.l2_ < 1e3
    near = LogisticRegression(l2_previous=free.l2_ * 2, random_state=0).fit(X, y)
    assert np.log10(near.l2_) == pytest.approx(np.log10(free.l2_) + 0.9 * np.log10(2), abs=0.02)
    assert LogisticRegression(l2=0.5, l2_previous=3.0).fit(X, y).l2_ == 0.5  # a fixed prior ignores it
    for bad in (-1.0, 0, "big", True):
        with pytest.raises(ValueError, match="l2_previous"):
            LogisticRegression(l2_previous=bad).fit(X, y)

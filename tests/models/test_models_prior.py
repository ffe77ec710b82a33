"""LogisticRegression(l2="auto"): the prior precision is learned from the labeled rows at every fit."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification

from server.models import LogisticRegression
from server.models.logreg import objective


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


def test_laplace_posterior_uses_the_chosen_prior():
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


@pytest.mark.xfail(strict=True, reason=(
    "issue 11: the evidence fixed point (Kronecker curvature) settles near l2=1 here and the curve still drops "
    "~0.10 (old fixed l2=1: ~0.16; l2=0.01: <0.01). The exact Laplace evidence peaks near l2=0.1 on small "
    "versions of this set; the Kronecker log-determinant and MacKay's update both bias the choice upward."))
def test_the_learned_prior_does_not_collapse_on_many_classes():
    assert _drop_after_20_random_labels("auto") <= 0.01


def test_many_class_fit_does_not_warn():
    E, y = _embedding_like(n_classes=50)
    names = y
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression().fit(E[:60], names[:60])  # 50 classes in 60 rows
        LogisticRegression().fit(E[:60], names[:60].astype(object))

"""LogisticRegression: the exact objective, its optimum, the Laplace posterior, the head for influence."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from assay.models import LogisticRegression
from assay.models.logreg import objective
from tests.timing import best_time


def _problem(n=60, d=4, c=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d)) * 1.5
    y = rng.integers(c, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X, y


def _reference_loss(w_flat, X, y, num_classes, l2):
    """The objective written out independently: summed CE of softmax(W [x, 1]) plus (l2/2)||W||^2."""
    Phi = np.hstack([X, np.ones((len(X), 1))])
    W = w_flat.reshape(num_classes, Phi.shape[1])
    total = 0.0
    for phi, label in zip(Phi, y):
        logits = W @ phi
        total += np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[label]
    return total + 0.5 * l2 * np.sum(W**2)


def _reference_hessian(W, Phi, l2):
    size = W.size
    H = l2 * np.eye(size)
    for phi in Phi:
        logits = W @ phi
        p = np.exp(logits - logits.max())
        p /= p.sum()
        H += np.kron(np.diag(p) - np.outer(p, p), np.outer(phi, phi))
    return H


def test_gradient_matches_finite_differences():
    X, y = _problem()
    Phi = np.hstack([X, np.ones((len(X), 1))])
    w = np.random.default_rng(1).normal(size=3 * Phi.shape[1])
    loss, grad = objective(w, Phi, y, 3, 0.7)
    assert loss == pytest.approx(_reference_loss(w, X, y, 3, 0.7), rel=1e-10)
    eps = 1e-6
    numeric = np.array([(objective(w + eps * e, Phi, y, 3, 0.7)[0] - objective(w - eps * e, Phi, y, 3, 0.7)[0])
                        / (2 * eps) for e in np.eye(len(w))])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("l2", [0.1, 1.0, 10.0])
def test_weights_are_the_minimizer_of_the_exact_objective(l2):
    X, y = _problem()
    model = LogisticRegression(l2=l2, tol=1e-9).fit(X, y)
    # Minimize the independently written objective with a different method and numerical gradients.
    result = optimize.minimize(_reference_loss, np.zeros(3 * 5), args=(X, y, 3, l2), method="BFGS",
                               options={"gtol": 1e-8})
    np.testing.assert_allclose(model.W_, result.x.reshape(3, 5), atol=2e-4)
    assert model.W_.shape == (3, 5)  # two classes or ten: one row per class, bias last
    np.testing.assert_allclose(model.coef_, model.W_[:, :4])
    np.testing.assert_allclose(model.intercept_, model.W_[:, 4])


def test_two_classes_get_two_rows_and_a_penalized_bias():
    X, y = _problem(c=2)
    model = LogisticRegression(l2=1.0, tol=1e-9).fit(X, y)
    assert model.W_.shape == (2, 5)
    # With both rows penalized the optimum is symmetric: the rows sum to zero (bias included).
    np.testing.assert_allclose(model.W_.sum(axis=0), 0.0, atol=1e-5)


def test_hessian_matches_reference():
    X, y = _problem()
    model = LogisticRegression(l2=0.5, tol=1e-9).fit(X, y)
    Phi = np.hstack([X, np.ones((len(X), 1))])
    np.testing.assert_allclose(model.hessian(), _reference_hessian(model.W_, Phi, 0.5), rtol=1e-10, atol=1e-10)


def test_laplace_samples_have_the_inverse_hessian_as_covariance():
    X, y = _problem(n=40, d=2, c=3)
    model = LogisticRegression(l2=1.0, tol=1e-9, random_state=0).fit(X, y)
    assert model.laplace_ == "full"
    samples = model.weight_samples(40_000).reshape(40_000, -1)
    cov = np.linalg.inv(_reference_hessian(model.W_, np.hstack([X, np.ones((40, 1))]), 1.0))
    np.testing.assert_allclose(samples.mean(axis=0), model.W_.ravel(), atol=4 * np.sqrt(cov.diagonal().max() / 40_000))
    empirical = np.cov(samples, rowvar=False)
    assert np.linalg.norm(empirical - cov) / np.linalg.norm(cov) < 0.03


def test_diagonal_laplace_uses_the_hessian_diagonal():
    X, y = _problem(n=40, d=2, c=3)
    model = LogisticRegression(l2=1.0, laplace="diag", random_state=0).fit(X, y)
    samples = model.weight_samples(40_000).reshape(40_000, -1)
    H = _reference_hessian(model.W_, np.hstack([X, np.ones((40, 1))]), 1.0)
    np.testing.assert_allclose(samples.var(axis=0), 1.0 / H.diagonal(), rtol=0.04)


def test_kronecker_laplace_covariance():
    X, y = _problem(n=40, d=2, c=3)
    model = LogisticRegression(l2=1.0, laplace="kron", random_state=0).fit(X, y)
    Phi = np.hstack([X, np.ones((40, 1))])
    logits = Phi @ model.W_.T
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    A = (np.diag(P.sum(axis=0)) - P.T @ P) / len(P)
    expected = np.linalg.inv(np.kron(A, Phi.T @ Phi) + np.eye(P.shape[1] * Phi.shape[1]))
    samples = model.weight_samples(40_000).reshape(40_000, -1)
    assert np.linalg.norm(np.cov(samples, rowvar=False) - expected) / np.linalg.norm(expected) < 0.03


def test_auto_laplace_falls_back_when_the_hessian_is_too_big():
    X, y = _problem(n=50, d=30, c=4)
    assert LogisticRegression(max_exact_hessian=100).fit(X, y).laplace_ == "kron"
    assert LogisticRegression(max_exact_hessian=20).fit(X, y).laplace_ == "diag"
    assert LogisticRegression().fit(X, y).laplace_ == "full"
    for mode in ("kron", "diag"):
        samples = LogisticRegression(laplace=mode, random_state=0).fit(X, y).predict_proba_samples(X, 5)
        assert samples.shape == (50, 5, 4) and np.allclose(samples.sum(axis=-1), 1.0, atol=1e-5)


def test_posterior_is_sharper_with_more_data():
    X, y = _problem(n=400, d=3, c=3, seed=2)
    spread = []
    for n in (20, 400):
        samples = LogisticRegression(random_state=0).fit(X[:n], y[:n]).predict_proba_samples(X, 30)
        spread.append(samples.std(axis=1).mean())
    assert spread[1] < 0.5 * spread[0]


def test_string_labels_and_unseen_class_order():
    X, y = _problem()
    names = np.array(["zebra", "ant", "moth"])[y]
    model = LogisticRegression().fit(X, names)
    assert list(model.classes_) == ["ant", "moth", "zebra"]
    same = LogisticRegression().fit(X, y)
    # Relabeling permutes the columns: column of "zebra" is the column of class 0.
    np.testing.assert_allclose(model.predict_proba(X)[:, 2], same.predict_proba(X)[:, 0], atol=1e-6)


def test_linear_head_feeds_exact_influence():
    influence = pytest.importorskip("assay.strategies.influence", reason="assay.strategies.influence has not landed yet")
    X, y = _problem(n=260, d=3, c=3, seed=3)
    train, val, pool = np.arange(200), np.arange(200, 240), np.arange(240, 260)
    model = LogisticRegression(l2=1.0, tol=1e-10).fit(X[train], y[train])
    W, Phi_train, l2 = model.linear_head(X[train])
    _, Phi_val, _ = model.linear_head(X[val])
    _, Phi_pool, _ = model.linear_head(X[pool])
    scores = influence.influence_scores(W, Phi_train, y[train], Phi_val, y[val], Phi_pool, l2)

    def val_loss(m):
        probs = m.predict_proba(X[val])
        return -np.sum(np.log(probs[np.arange(len(val)), np.searchsorted(m.classes_, y[val])]))

    base = val_loss(model)
    actual = []
    for i in pool:
        pseudo = model.predict(X[i:i + 1])
        refit = LogisticRegression(l2=1.0, tol=1e-10).fit(np.vstack([X[train], X[i:i + 1]]),
                                                           np.concatenate([y[train], pseudo]))
        actual.append(base - val_loss(refit))
    actual = np.array(actual)
    # First order in a 1/200 perturbation: close to retraining (the highest-leverage
    # points carry a visible second-order term), and ranking the pool the same way.
    np.testing.assert_allclose(scores, actual, rtol=0.3, atol=0.05 * np.abs(actual).max())
    assert np.corrcoef(scores, actual)[0, 1] > 0.97


def test_fit_is_fast_at_server_scale():
    rng = np.random.default_rng(0)
    y = rng.integers(10, size=1000)
    X = rng.normal(size=(10, 256))[y] * 0.3 + rng.normal(size=(1000, 256))
    took = best_time(lambda: LogisticRegression(random_state=0).fit(X, y), repeat=3)
    # Typically ~0.05 s, a tenth of scikit-learn's lbfgs on the same data, timed in the same run (so at any
    # load); the bound only catches a pathological slowdown.
    from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

    reference = best_time(lambda: SklearnLogisticRegression(max_iter=1000).fit(X, y), repeat=3)
    assert took < 2 * reference, (took, reference)

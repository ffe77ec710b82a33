import numpy as np
import pytest
import scipy.optimize
import scipy.stats
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from assay.strategies import StrategyInputError, influence


def softmax(logits):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def objective(w_flat, X, y, l2, num_classes, weights):
    """Weighted summed cross-entropy + l2/2 ||W||^2 and its gradient."""
    W = w_flat.reshape(num_classes, -1)
    logits = X @ W.T
    top = logits.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    loss = weights @ (lse - logits[np.arange(len(y)), y]) + 0.5 * l2 * w_flat @ w_flat
    resid = np.exp(logits - lse[:, None])
    resid[np.arange(len(y)), y] -= 1.0
    return loss, ((resid * weights[:, None]).T @ X + l2 * W).ravel()


def naive_hessian(W, X, l2, weights=None):
    """The training Hessian item by item, with np.kron."""
    weights = np.ones(len(X)) if weights is None else weights
    hessian = l2 * np.eye(W.size)
    for x, p, wt in zip(X, softmax(X @ W.T), weights):
        hessian += wt * np.kron(np.diag(p) - np.outer(p, p), np.outer(x, x))
    return hessian


def fit(X, y, l2, num_classes, w0, weights=None):
    """The exact minimiser: L-BFGS, then Newton steps until the gradient is at rounding level."""
    weights = np.ones(len(y)) if weights is None else weights
    res = scipy.optimize.minimize(objective, w0, args=(X, y, l2, num_classes, weights), jac=True,
                                  method="L-BFGS-B", options=dict(gtol=1e-10, ftol=0, maxiter=20_000))
    w = res.x
    for _ in range(3):
        W = w.reshape(num_classes, -1)
        probs = softmax(X @ W.T)
        blocks = weights[:, None, None] * (probs[:, :, None] * np.eye(num_classes) - probs[:, :, None] * probs[:, None])
        hessian = np.einsum("nab,ncd->acbd", blocks, X[:, :, None] * X[:, None, :]).reshape(w.size, w.size)
        grad = objective(w, X, y, l2, num_classes, weights)[1]
        w = w - np.linalg.solve(hessian + l2 * np.eye(w.size), grad)
    assert np.abs(objective(w, X, y, l2, num_classes, weights)[1]).max() < 1e-9
    return w.reshape(num_classes, -1)


def val_loss(W, X, y):
    return objective(W.ravel(), X, y, 0.0, W.shape[0], np.ones(len(y)))[0]


@pytest.fixture(scope="module")
def digits_problem():
    """load_digits reduced to 20 standardised PCA features plus a constant column; W fitted exactly."""
    X_raw, y = load_digits(return_X_y=True)
    Z = PCA(20, random_state=0).fit_transform((X_raw - X_raw.mean(0)) / (X_raw.std(0) + 1e-9))
    X = np.hstack([Z / Z.std(0), np.ones((len(Z), 1))])
    perm = np.random.default_rng(0).permutation(len(y))
    train, val, pool = perm[:300], perm[300:500], perm[500:530]
    l2 = 1.0
    W = fit(X[train], y[train], l2, 10, np.zeros(10 * X.shape[1]))
    return dict(W=W, X_train=X[train], y_train=y[train], X_val=X[val], y_val=y[val], X_pool=X[pool], l2=l2)


def scores_of(problem, **kw):
    p = problem
    return influence.influence_scores(p["W"], p["X_train"], p["y_train"], p["X_val"], p["y_val"],
                                      p["X_pool"], p["l2"], **kw)


def test_scores_agree_with_retraining(digits_problem):
    p = digits_problem
    scores = scores_of(p)
    eps = 1e-3
    base = val_loss(p["W"], p["X_val"], p["y_val"])
    measured = []
    for x in p["X_pool"]:
        pseudo = int(np.argmax(p["W"] @ x))
        X_add = np.vstack([p["X_train"], x])
        y_add = np.append(p["y_train"], pseudo)
        weights = np.append(np.ones(len(p["y_train"])), eps)
        W_eps = fit(X_add, y_add, p["l2"], 10, p["W"].ravel(), weights)
        measured.append((base - val_loss(W_eps, p["X_val"], p["y_val"])) / eps)
    measured = np.array(measured)
    assert scipy.stats.spearmanr(measured, scores).statistic > 0.99
    # The remaining gap is the O(eps) term of the finite difference.
    np.testing.assert_allclose(scores, measured, rtol=0.02, atol=2e-3 * np.abs(measured).max())
    assert (scores > 0).any() and (scores < 0).any()  # both helpful and harmful points occur here


def test_scores_match_a_naive_reference_with_argmax_pseudo_labels(digits_problem):
    p = digits_problem
    W = p["W"]
    probs_val = softmax(p["X_val"] @ W.T)
    g_val = np.zeros_like(W)
    for x, prob, label in zip(p["X_val"], probs_val, p["y_val"]):
        g_val += np.outer(prob - np.eye(10)[label], x)
    solved = np.linalg.solve(naive_hessian(W, p["X_train"], p["l2"]), g_val.ravel())
    expected, expected_gradient = [], []
    for x in p["X_pool"]:
        prob = softmax((W @ x)[None])[0]
        grad = np.outer(prob - np.eye(10)[np.argmax(prob)], x)
        expected.append(solved @ grad.ravel())
        # What "expected influence" under the model's own distribution would give.
        mean_grad = sum(prob[c] * np.outer(prob - np.eye(10)[c], x) for c in range(10))
        expected_gradient.append(solved @ mean_grad.ravel())
    scores = scores_of(p)
    np.testing.assert_allclose(scores, expected, rtol=1e-8, atol=1e-10)
    # The expected-gradient version is identically zero; argmax labels are not.
    np.testing.assert_allclose(expected_gradient, 0.0, atol=1e-10)
    assert np.abs(scores).max() > 1e-2


@pytest.mark.parametrize("seed", range(3))
def test_cholesky_and_cg_give_the_same_scores(seed):
    rng = np.random.default_rng(seed)
    n, d, c = 120, 12, 4
    X = np.hstack([rng.normal(size=(n + 80 + 50, d - 1)) * rng.uniform(0.1, 5.0, size=d - 1),
                   np.ones((n + 80 + 50, 1))])
    W = rng.normal(size=(c, d)) * 0.3
    y = rng.integers(0, c, size=n + 80)
    args = (W, X[:n], y[:n], X[n:n + 80], y[n:n + 80], X[n + 80:], 0.5)
    chol = influence.influence_scores(*args, method="cholesky")
    cg = influence.influence_scores(*args, method="cg")
    np.testing.assert_allclose(cg, chol, rtol=1e-6, atol=1e-7 * np.abs(chol).max())
    np.testing.assert_allclose(influence.influence_scores(*args), chol)  # auto picks Cholesky here


def test_cg_on_an_ill_conditioned_problem_and_its_iteration_cap():
    rng = np.random.default_rng(5)
    n, d, c = 200, 30, 5
    mixing = rng.normal(size=(d, d)) / np.arange(1, d + 1)[:, None] ** 1.5  # strongly correlated features
    X = rng.normal(size=(n + 100 + 40, d)) @ mixing
    X[:, -1] = 1.0
    W = rng.normal(size=(c, d)) * 2.0
    y = rng.integers(0, c, size=n + 100)
    args = (W, X[:n], y[:n], X[n:n + 100], y[n:n + 100], X[n + 100:], 1e-3)
    chol = influence.influence_scores(*args, method="cholesky")
    np.testing.assert_allclose(influence.influence_scores(*args, method="cg"), chol,
                               rtol=1e-5, atol=1e-6 * np.abs(chol).max())
    with pytest.warns(RuntimeWarning, match="conjugate gradients"):
        rough = influence.influence_scores(*args, method="cg", cg_maxiter=2)
    assert not np.allclose(rough, chol, rtol=1e-5, atol=1e-6 * np.abs(chol).max())


def test_inputs_are_not_modified(digits_problem):
    p = digits_problem
    copies = {k: np.array(v, copy=True) for k, v in p.items() if k != "l2"}
    scores_of(p, method="cholesky")
    scores_of(p, method="cg")
    for k, v in copies.items():
        np.testing.assert_array_equal(p[k], v)


def test_float32_inputs_and_list_labels_work(digits_problem):
    p = digits_problem
    expected = scores_of(p)
    got = influence.influence_scores(p["W"].astype(np.float32).astype(np.float64), p["X_train"],
                                     p["y_train"].tolist(), p["X_val"], p["y_val"].astype(float),
                                     p["X_pool"].astype(np.float32), p["l2"])
    assert got.dtype == np.float64 and got.shape == (len(p["X_pool"]),)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_empty_pool_and_empty_training_set():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(3, 4))
    X_val, y_val = rng.normal(size=(5, 4)), np.array([0, 1, 2, 0, 1])
    assert influence.influence_scores(W, X_val, y_val, X_val, y_val, np.zeros((0, 4)), 1.0).shape == (0,)
    # With no training rows the Hessian is l2 I: score = g_val . grad / l2.
    x = rng.normal(size=(1, 4))
    prob = softmax(x @ W.T)[0]
    g_val = (softmax(X_val @ W.T) - np.eye(3)[y_val]).T @ X_val
    expected = np.sum(g_val * np.outer(prob - np.eye(3)[np.argmax(prob)], x[0])) / 2.0
    got = influence.influence_scores(W, np.zeros((0, 4)), np.zeros(0, dtype=int), X_val, y_val, x, 2.0)
    np.testing.assert_allclose(got, [expected])


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(W=np.ones((3, 5))), "features"),
        (dict(W=np.ones(4)), "dimensions"),
        (dict(X_train=np.ones((6, 3))), "features"),
        (dict(X_pool=np.ones((2, 4, 1))), "dimensions"),
        (dict(X_val=np.full((5, 4), np.nan)), "NaN"),
        (dict(y_train=np.array([0, 1, 2, 3, 0, 1])), r"\[0, 3\)"),
        (dict(y_train=np.array([0, 1, -1, 0, 0, 1])), r"\[0, 3\)"),
        (dict(y_train=np.array([0, 1, 2])), "shape"),
        (dict(y_val=np.array([0.5, 1, 2, 0, 1])), "integer"),
        (dict(y_val=np.array(["a", "b", "c", "a", "b"])), "integer"),
        (dict(X_val=np.zeros((0, 4)), y_val=np.zeros(0, dtype=int)), "validation"),
        (dict(l2=0.0), "l2"),
        (dict(l2=-1.0), "l2"),
        (dict(l2=np.inf), "l2"),
        (dict(l2="1"), "l2"),
        (dict(method="lissa"), "method"),
    ],
)
def test_bad_input_is_rejected(change, match):
    rng = np.random.default_rng(2)
    args = dict(W=rng.normal(size=(3, 4)), X_train=rng.normal(size=(6, 4)), y_train=np.array([0, 1, 2, 0, 1, 2]),
                X_val=rng.normal(size=(5, 4)), y_val=np.array([0, 1, 2, 0, 1]), X_pool=rng.normal(size=(7, 4)),
                l2=1.0)
    method = change.pop("method", "auto")
    args.update(change)
    with pytest.raises(StrategyInputError, match=match):
        influence.influence_scores(args["W"], args["X_train"], args["y_train"], args["X_val"], args["y_val"],
                                   args["X_pool"], args["l2"], method=method)

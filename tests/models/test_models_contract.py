"""The model protocol, checked the same way on every built-in model."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from assay.models import BootstrapEnsemble, LogisticRegression, MLPClassifier, capabilities
from assay.strategies import EMBEDDINGS, LINEAR_HEAD, PROBS, SAMPLES

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


def _models():
    return {
        "logreg": lambda: LogisticRegression(random_state=0),
        "ensemble": lambda: BootstrapEnsemble(n_members=5, random_state=0),
        "mlp": lambda: MLPClassifier(hidden=(32,), max_epochs=40, random_state=0),
    }


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    # Only 4 classes, labeled with names whose sorted order differs from the digit order.
    rows = np.random.default_rng(0).permutation(np.flatnonzero(np.isin(y, [1, 3, 7, 8])))[:240]
    return X[rows] / 16.0, NAMES[y[rows]]


@pytest.fixture(scope="module")
def all_fitted(digits):
    X, y = digits
    return {name: make().fit(X[:160], y[:160]) for name, make in _models().items()}


@pytest.fixture(params=sorted(_models()))
def fitted(request, all_fitted, digits):
    X, y = digits
    return request.param, all_fitted[request.param], X[160:], y[160:]


def test_classes_are_sorted_string_labels_and_columns_follow_them(fitted):
    name, model, X, y = fitted
    assert list(model.classes_) == ["eight", "one", "seven", "three"]
    probs = model.predict_proba(X)
    assert probs.shape == (len(X), 4)
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0)
    # Column j is the probability of classes_[j]: the argmax column names the prediction, which is mostly right.
    assert np.array_equal(model.classes_[probs.argmax(axis=1)], model.predict(X))
    assert np.mean(model.predict(X) == y) > 0.85


def test_posterior_samples_are_fixed_functions(fitted):
    name, model, X, _ = fitted
    assert SAMPLES in capabilities(model)
    samples = model.predict_proba_samples(X, 4)
    assert samples.shape == (len(X), 4, 4)
    assert np.all(np.isfinite(samples)) and np.allclose(samples.sum(axis=-1), 1.0, atol=1e-5)
    # The same K functions for every item: two batches give the rows of one call, and calling again repeats it.
    halves = np.concatenate([model.predict_proba_samples(X[:30], 4), model.predict_proba_samples(X[30:], 4)])
    np.testing.assert_allclose(halves, samples, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.predict_proba_samples(X, 4), samples)
    # Fewer samples are the first ones of more.
    np.testing.assert_allclose(model.predict_proba_samples(X, 2), samples[:, :2], rtol=1e-5, atol=1e-6)
    # And the samples differ from each other.
    assert np.abs(samples[:, 0] - samples[:, 1]).max() > 1e-3


def test_samples_reproducible_from_random_state(digits):
    X, y = digits
    for make in _models().values():
        a = make().fit(X[:100], y[:100]).predict_proba_samples(X[100:120], 3)
        b = make().fit(X[:100], y[:100]).predict_proba_samples(X[100:120], 3)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_capabilities(fitted):
    name, model, X, _ = fitted
    expected = {"logreg": {PROBS, SAMPLES, EMBEDDINGS, LINEAR_HEAD}, "ensemble": {PROBS, SAMPLES},
                "mlp": {PROBS, SAMPLES, EMBEDDINGS, LINEAR_HEAD}}[name]
    assert capabilities(model) == expected


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_embeddings_deterministic(name, all_fitted, digits):
    model, X = all_fitted[name], digits[0][160:]
    emb = model.embed(X)
    assert emb.ndim == 2 and len(emb) == len(X) and np.all(np.isfinite(emb))
    np.testing.assert_array_equal(model.embed(X), emb)
    np.testing.assert_allclose(np.concatenate([model.embed(X[:7]), model.embed(X[7:])]), emb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_linear_head_reproduces_predict_proba(name, all_fitted, digits):
    model, X = all_fitted[name], digits[0][160:]
    W, Phi, l2 = model.linear_head(X)
    assert W.shape == (4, Phi.shape[1]) and len(Phi) == len(X) and l2 > 0
    # The bias feature: a positive constant (1, or logreg's intercept_scaling_).
    assert Phi[0, -1] > 0 and np.all(Phi[:, -1] == Phi[0, -1])
    logits = Phi @ W.T
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, model.predict_proba(X), atol=1e-5)


def test_single_class_gives_probability_one(digits):
    X, _ = digits
    y = np.array(["only"] * 30)
    for make in _models().values():
        model = make().fit(X[:30], y)
        assert list(model.classes_) == ["only"]
        np.testing.assert_allclose(model.predict_proba(X[30:40]), 1.0)
        assert list(model.predict(X[30:32])) == ["only", "only"]

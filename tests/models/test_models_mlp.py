"""MLPClassifier: accuracy, fixed-mask MC dropout, embeddings, last-layer head, hygiene."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from assay.models import LogisticRegression, MLPClassifier


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_mlp_with_mc_dropout_matches_logreg_on_digits_at_300_labels(digits):
    """Simulation-style: 300 random labeled digits, tested on the other 1,497; three splits."""
    X, y = digits
    acc_logreg, acc_mlp, acc_mc = [], [], []
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(y))
        train, test = order[:300], order[300:]
        acc_logreg.append(LogisticRegression(random_state=seed).fit(X[train], y[train]).score(X[test], y[test]))
        mlp = MLPClassifier(random_state=seed).fit(X[train], y[train])
        acc_mlp.append(mlp.score(X[test], y[test]))
        mc_mean = mlp.predict_proba_samples(X[test], 20).mean(axis=1)
        acc_mc.append(np.mean(mlp.classes_[mc_mean.argmax(axis=1)] == y[test]))
    assert np.mean(acc_logreg) > 0.9
    assert np.mean(acc_mlp) >= np.mean(acc_logreg)
    assert np.mean(acc_mc) >= np.mean(acc_logreg)


def test_samples_apply_the_same_mask_to_every_item(digits):
    X, y = digits
    model = MLPClassifier(hidden=(32, 16), max_epochs=20, random_state=0).fit(X[:200], y[:200])
    masks = model.dropout_masks(5)
    assert [m.shape[1] for m in masks] == [32, 16]
    # Reproduce sample 3 by hand: the eval-mode network with mask 3 multiplied in after each hidden layer.
    x = torch.from_numpy(((X[200:210] - model.mean_) / model.scale_).astype(np.float32))
    h = x
    with torch.no_grad():
        for layer, mask in zip(model.net_.hidden, masks):
            h = torch.relu(layer(h)) * torch.from_numpy(mask[3])
        expected = torch.softmax(model.net_.out(h), dim=-1).numpy()
    np.testing.assert_allclose(model.predict_proba_samples(X[200:210], 5)[:, 3], expected, rtol=1e-5, atol=1e-6)
    keep = np.mean([np.mean(m > 0) for m in masks])
    assert abs(keep - 0.7) < 0.15  # dropout=0.3 drops about 30% of units per sample


def test_early_stopping_and_tiny_sets(digits):
    X, y = digits
    tiny = MLPClassifier(hidden=(16,), max_epochs=7, random_state=0).fit(X[:50], y[:50])
    assert tiny.n_epochs_ == 7 and tiny.n_fit_rows_ == 50  # no validation split: fixed epochs
    big = MLPClassifier(hidden=(16,), max_epochs=500, patience=5, random_state=0).fit(X[:1000], y[:1000])
    assert big.n_epochs_ < 500
    assert big.n_fit_rows_ == 900  # "auto": from 1,000 rows on, no second fit on all of them
    small = MLPClassifier(hidden=(16,), max_epochs=30, random_state=0).fit(X[:300], y[:300])
    assert small.n_fit_rows_ == 300 and small.n_epochs_ <= 30


def test_linear_head_is_the_output_layer(digits):
    X, y = digits
    model = MLPClassifier(hidden=(24,), max_epochs=10, weight_decay=1e-3, random_state=0).fit(X[:100], y[:100])
    W, Phi, l2 = model.linear_head(X[100:130])
    assert W.shape == (10, 25) and Phi.shape == (30, 25)
    np.testing.assert_allclose(Phi[:, :24], model.embed(X[100:130]), rtol=1e-6)
    np.testing.assert_allclose(W[:, 24], model.net_.out.bias.detach().numpy(), rtol=1e-6)
    # Adam's coupled L2 on the mean CE over n rows is sum CE + (n * wd / 2) ||W||^2.
    assert l2 == pytest.approx(1e-3 * 100)


def test_leaves_torch_global_state_alone(digits):
    X, y = digits
    rng_before = torch.get_rng_state().clone()
    threads_before = torch.get_num_threads()
    model = MLPClassifier(hidden=(16,), max_epochs=3, n_threads=1, random_state=0).fit(X[:100], y[:100])
    model.predict_proba_samples(X[:10], 3)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before


def test_pickles_with_its_samples(digits):
    import pickle

    X, y = digits
    model = MLPClassifier(hidden=(16,), max_epochs=5, random_state=0).fit(X[:100], y[:100])
    before = model.predict_proba_samples(X[100:120], 4)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba_samples(X[100:120], 4), before)

"""TorchClassifier: any torch module as an Assay model, with fixed-mask MC dropout."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from assay.models import TorchClassifier, capabilities
from assay.strategies import SAMPLES


def with_dropout(n_features, n_classes):
    return nn.Sequential(nn.Linear(n_features, 48), nn.ReLU(), nn.Dropout(0.4), nn.Linear(48, n_classes))


def channel_dropout(n_features, n_classes):
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Dropout2d(0.3),
                         nn.Flatten(), nn.Linear(6 * 6 * 6, n_classes))


def without_dropout(n_features, n_classes):
    return nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, n_classes))


def bad_output(n_features, n_classes):
    return nn.Linear(n_features, n_classes + 2)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


@pytest.mark.parametrize("factory", [with_dropout, channel_dropout])
def test_fits_predicts_and_samples_consistently(factory, digits):
    X, y = digits
    model = TorchClassifier(factory, epochs=40, random_state=0).fit(X[:300], y[:300])
    assert model.score(X[300:], y[300:]) > 0.8
    assert SAMPLES in capabilities(model)
    samples = model.predict_proba_samples(X[300:], 6)
    assert samples.shape == (100, 6, 10) and np.allclose(samples.sum(axis=-1), 1.0, atol=1e-5)
    halves = np.concatenate([model.predict_proba_samples(X[300:340], 6), model.predict_proba_samples(X[340:], 6)])
    np.testing.assert_allclose(halves, samples, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba_samples(X[300:], 3), samples[:, :3], rtol=1e-5, atol=1e-6)
    assert np.abs(samples[:, 0] - samples[:, 1]).max() > 1e-3
    # The module is left as the user wrote it: eval-mode predictions are deterministic, no hooks remain.
    np.testing.assert_array_equal(model.predict_proba(X[300:]), model.predict_proba(X[300:]))
    assert all(not m._forward_hooks for m in model.module_.modules())


def test_same_seed_same_model_and_global_rng_untouched(digits):
    X, y = digits
    state = torch.get_rng_state().clone()
    a = TorchClassifier(with_dropout, epochs=3, random_state=1).fit(X, y).predict_proba(X[:20])
    b = TorchClassifier(with_dropout, epochs=3, random_state=1).fit(X, y).predict_proba(X[:20])
    np.testing.assert_array_equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_no_dropout_means_no_samples(digits):
    X, y = digits
    model = TorchClassifier(without_dropout, epochs=2, random_state=0).fit(X, y)
    assert SAMPLES not in capabilities(model)
    assert SAMPLES not in capabilities(TorchClassifier(without_dropout, mc_dropout=False))


def test_wrong_output_shape_is_explained(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"expected \(2, 10\), got \(2, 12\)"):
        TorchClassifier(bad_output, epochs=1).fit(X, y)

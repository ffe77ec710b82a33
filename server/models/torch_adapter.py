"""Wrap any ``torch.nn.Module`` into Assay's model protocol.

Example, in ``mypkg/models.py``::

    from torch import nn
    from assay.models import TorchClassifier

    def small_cnn(n_features, n_classes):
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 16, 3), nn.ReLU(),
                             nn.Flatten(), nn.Dropout(0.3), nn.Linear(16 * 26 * 26, n_classes))

    def make_model(**params):
        return TorchClassifier(small_cnn, epochs=20, **params)

and name the model ``mypkg.models:make_model`` in the project settings.

The factory is called at fit time with ``(n_features, n_classes)`` and must
return a module mapping a float32 ``(N, n_features)`` batch to ``(N, n_classes)``
logits. It must be picklable (a module-level function), since fitted models
are pickled.

Posterior samples come from MC dropout with masks fixed per sample index:
every ``nn.Dropout``/``Dropout1d/2d/3d`` with ``p > 0`` gets K masks drawn
once per fitted model (per feature for ``Dropout``, per channel for the
others), and sample k applies mask k to every item. Alpha dropout is not used
for sampling.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from ._targets import check_class_labels
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn import functional as F

from assay.strategies import as_rng

from ._torch_utils import INFER_ROWS, as_float_tensor, softmax_np, torch_generator, torch_threads

_SAMPLED_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def dropout_layers(module: nn.Module) -> list[nn.Module]:
    """The dropout modules MC sampling acts on, in registration order."""
    return [m for m in module.modules() if isinstance(m, _SAMPLED_DROPOUT) and m.p > 0]


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn-style classifier around a user's torch module.

    Parameters
    ----------
    module_factory : callable ``(n_features, n_classes) -> nn.Module`` returning logits.
    epochs, lr, weight_decay, batch_size : Adam training on mean cross-entropy.
    standardize : center and scale inputs with the training statistics first.
    mc_dropout : "auto" (posterior samples when the fitted module has dropout;
        before fitting this cannot be known and samples are assumed available),
        True or False.
    n_threads : torch intra-op threads while fitting and predicting.
    random_state : int, numpy Generator or None. The factory's own initialization
        and the module's training dropout draw from torch's global generator, so
        fitting seeds it inside ``torch.random.fork_rng`` and restores it after.
    """

    def __init__(self, module_factory, epochs=50, lr=1e-3, weight_decay=0.0, batch_size=64, standardize=True,
                 mc_dropout="auto", n_threads=1, random_state=None):
        self.module_factory = module_factory
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.standardize = standardize
        self.mc_dropout = mc_dropout
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_class_labels(y)
        self.classes_, y_N = np.unique(y, return_inverse=True)
        seeds = as_rng(self.random_state).integers(2**62, size=3)
        seed_torch, seed_shuffle, self._sample_seed = (int(s) for s in seeds)
        self.mean_ = X.mean(axis=0) if self.standardize else np.zeros(X.shape[1], np.float32)
        std = X.std(axis=0) if self.standardize else np.ones(X.shape[1], np.float32)
        self.scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        X_t = as_float_tensor((X - self.mean_) / self.scale_)
        y_t = torch.from_numpy(y_N.astype(np.int64))

        with torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_torch)
            module = self.module_factory(X.shape[1], len(self.classes_))
            if not isinstance(module, nn.Module):
                raise TypeError(f"module_factory returned {type(module).__name__}, not a torch.nn.Module")
            self._check_output(module, X_t[:2])
            optimizer = torch.optim.Adam(module.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
            gen = torch_generator(seed_shuffle)
            batch = max(1, int(self.batch_size))
            for _ in range(int(self.epochs)):
                module.train()
                order = torch.randperm(len(y_t), generator=gen)
                for start in range(0, len(y_t), batch):
                    rows = order[start:start + batch]
                    optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(module(X_t[rows]), y_t[rows]).backward()
                    optimizer.step()
        module.eval()
        self.module_ = module
        self._masks = {}
        return self

    def _check_output(self, module, x):
        module.eval()
        with torch.no_grad():
            out = module(x)
        expected = (len(x), len(self.classes_))
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the module must map (N, n_features) inputs to (N, n_classes) logits: "
                             f"expected {expected}, got {shape}")

    def _run(self, X, fn) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        X_t = as_float_tensor((X - self.mean_) / self.scale_)
        self.module_.eval()
        with torch.no_grad(), torch_threads(self.n_threads):
            parts = [fn(X_t[start:start + INFER_ROWS]) for start in range(0, len(X_t), INFER_ROWS)]
        return np.concatenate(parts)

    def predict_proba(self, X):
        return self._run(X, lambda x: softmax_np(self.module_(x))).astype(np.float64)

    def predict(self, X):
        probs_N_C = self.predict_proba(X)
        return self.classes_[np.argmax(probs_N_C, axis=1)]

    def _samples_available(self):
        if self.mc_dropout == "auto":
            return not hasattr(self, "module_") or bool(dropout_layers(self.module_))
        return bool(self.mc_dropout)

    @available_if(_samples_available)
    def predict_proba_samples(self, X, k):
        """``(N, k, C)`` float32 MC-dropout probabilities; sample j applies fixed mask j to every item."""
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        check_is_fitted(self)
        layers = dropout_layers(self.module_)
        if not layers:
            raise ValueError("the module has no dropout layer with p > 0, so it has no posterior samples; "
                             "add nn.Dropout to it or use the ensemble model")

        def one_pass(x):
            per_sample = []
            for j in range(k):
                handles = [layer.register_forward_hook(self._mask_hook(i, layer, j, k))
                           for i, layer in enumerate(layers)]
                try:
                    per_sample.append(softmax_np(self.module_(x)))
                finally:
                    for handle in handles:
                        handle.remove()
            return np.stack(per_sample, axis=1)

        return self._run(X, one_pass)

    def _mask_hook(self, index, layer, j, k):
        def hook(module, inputs, output):
            # In eval mode dropout is the identity, so output == input here.
            return output * self._mask(index, layer, output.shape, k)[j]
        return hook

    def _mask(self, index, layer, shape, k) -> torch.Tensor:
        """Mask rows for layer ``index``: per feature (``Dropout``) or per channel (``DropoutNd``)."""
        if isinstance(layer, nn.Dropout):
            unit_shape = tuple(shape[1:])
        else:
            unit_shape = (shape[1],) + (1,) * (len(shape) - 2)
        cached = self._masks.get(index)
        if cached is None or cached.shape[0] < k or tuple(cached.shape[1:]) != unit_shape:
            keep = 1.0 - layer.p
            draws = np.random.default_rng([self._sample_seed, index]).random((k, *unit_shape))
            cached = torch.from_numpy(((draws < keep) / keep).astype(np.float32))
            self._masks[index] = cached
        return cached

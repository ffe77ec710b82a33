"""A small torch MLP with MC dropout whose K dropout masks are K fixed functions.

Ordinary MC dropout draws a fresh mask for every item in every pass, so
"sample k" means something different for each item. BatchBALD scores the
joint entropy of a batch across samples, which only makes sense when sample k
is one network applied to every item. Here the K masks are drawn once per
fitted model from a seeded generator (one unit mask per hidden layer per
sample) and sample k applies mask k to every item, in every call.
"""
from __future__ import annotations

import copy
import os

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.metaestimators import available_if
from ._targets import check_class_labels
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn import functional as F

from assay.strategies import as_rng

from .params import SEED, Param
from ._torch_utils import INFER_ROWS, as_float_tensor, seeded_linear, softmax_np, torch_generator, torch_threads

# Early stopping needs a validation split big enough to mean something; below
# this many held-out rows the network trains for a fixed max_epochs instead.
MIN_VALIDATION_ROWS = 20
REFIT_BELOW_ROWS = 1000


class _Net(nn.Module):
    """Linear -> ReLU -> dropout per hidden layer, then a linear output layer.

    Dropout is applied by hand so that training masks come from our seeded
    generator and sampling masks can be fixed per posterior sample.
    """

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int, gen: torch.Generator):
        super().__init__()
        sizes = (n_in, *hidden)
        self.hidden = nn.ModuleList(seeded_linear(a, b, gen) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = seeded_linear(sizes[-1], n_out, gen)

    def features(self, x, *, dropout=0.0, gen=None, masks=()):
        """Penultimate activations. ``gen``: fresh training masks; ``masks``: (K, H) keep-masks
        for the first len(masks) layers, which add a K axis: (N, H) -> (N, K, H)."""
        h = x
        for i, layer in enumerate(self.hidden):
            h = F.relu(layer(h))
            if gen is not None and dropout > 0:
                keep = torch.rand(h.shape, generator=gen) >= dropout
                h = h * keep / (1.0 - dropout)
            elif i < len(masks):
                if h.dim() == 2:
                    h = h.unsqueeze(1)
                h = h * masks[i]
        return h

    def forward(self, x, *, masks=None, **kwargs):
        if not masks:
            return self.out(self.features(x, **kwargs))
        # Fold the last mask into the output weights: (h * m_k) W^T = h (W * m_k)^T, so
        # with one hidden layer the (N, K, H) block is never materialized.
        h = self.features(x, masks=masks[:-1])
        weight_C_H, last_K_H = self.out.weight, masks[-1]
        if h.dim() == 3:
            return self.out(h * last_K_H)
        num_samples, num_classes = len(last_K_H), len(weight_C_H)
        folded_KC_H = (last_K_H[:, None, :] * weight_C_H[None]).reshape(num_samples * num_classes, -1)
        return (h @ folded_KC_H.T).reshape(len(h), num_samples, num_classes) + self.out.bias


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron with early stopping and fixed-mask MC dropout.

    Parameters
    ----------
    hidden : widths of the hidden layers.
    dropout : dropout rate after each hidden layer, in training and for posterior samples.
    lr, weight_decay : Adam's step size and L2 coefficient (coupled L2 on the mean
        cross-entropy, biases included).
    max_epochs, patience : the epoch cap, and the epochs without a better
        validation loss before stopping.
    batch_size : minibatch rows.
    validation_fraction : share of the labeled rows held out for early stopping.
    refit : after early stopping picks the epoch count, retrain on all rows for
        that many epochs. "auto" does so below 1,000 labeled rows, where the
        held-out tenth is a real loss of data; above, it is not worth a second fit.
    standardize : center and scale each input feature with the training statistics.
    n_threads : torch intra-op threads while fitting and predicting (None: leave as
        is). One by default: these networks are too small to gain from more, and
        on a busy 2-core machine two threads made fitting 4-20x slower.
    random_state : int, numpy Generator or None; fixes init, shuffling and the masks.
    """

    # Every parameter's type and range (assay.models.params): what a project's model_params may set. The retrain
    # worker is shared by every project: sizes and epochs are bounded so one project cannot hold it for hours.
    PARAMS = {
        "hidden": Param("ints", 1, 2048, max_len=4),
        "dropout": Param("number", 0, 1, high_open=True),
        "lr": Param("number", 0, 10, low_open=True),
        "weight_decay": Param("number", 0, 10),
        "max_epochs": Param("int", 1, 2000),
        "patience": Param("int", 1, 200),
        "batch_size": Param("int", 1, 65_536),
        "validation_fraction": Param("number", 0, 0.5, low_open=True),
        "refit": Param("choice", choices=("auto", True, False)),
        "standardize": Param("bool"),
        "n_threads": Param("int", 1, max(1, os.cpu_count() or 1), nullable=True),
        "random_state": SEED,
    }

    def __init__(self, hidden=(256,), dropout=0.3, lr=1e-3, weight_decay=1e-4, max_epochs=200, patience=10,
                 batch_size=64, validation_fraction=0.1, refit="auto", standardize=True, n_threads=1,
                 random_state=None):
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.standardize = standardize
        self.n_threads = n_threads
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_class_labels(y)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        self.classes_, y_N = np.unique(y, return_inverse=True)
        rng = as_rng(self.random_state)
        seed_init, seed_split, self._sample_seed = (int(s) for s in rng.integers(2**62, size=3))
        if self.standardize:
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            self.scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        else:
            self.mean_ = np.zeros(X.shape[1], dtype=np.float32)
            self.scale_ = np.ones(X.shape[1], dtype=np.float32)
        X_t = as_float_tensor((X - self.mean_) / self.scale_)
        y_t = torch.from_numpy(y_N.astype(np.int64))

        with torch_threads(self.n_threads):
            fit_rows, val_rows = self._split(y_N, seed_split)
            if val_rows is None:
                net, epochs = self._train(X_t, y_t, None, None, seed_init, int(self.max_epochs))
                fit_rows_used = len(y_N)
            else:
                net, epochs = self._train(X_t[fit_rows], y_t[fit_rows], X_t[val_rows], y_t[val_rows],
                                          seed_init, int(self.max_epochs))
                fit_rows_used = len(fit_rows)
                if self.refit is True or (self.refit == "auto" and len(y_N) < REFIT_BELOW_ROWS):
                    net, _ = self._train(X_t, y_t, None, None, seed_init, epochs)
                    fit_rows_used = len(y_N)
        net.eval()
        self.net_ = net
        self.n_epochs_ = epochs
        self.n_fit_rows_ = fit_rows_used
        self._mask_cache = None
        return self

    def _split(self, y_N, seed):
        n_val = int(round(float(self.validation_fraction) * len(y_N)))
        if n_val < MIN_VALIDATION_ROWS or len(y_N) - n_val < 2:
            return np.arange(len(y_N)), None
        _, counts = np.unique(y_N, return_counts=True)
        stratify = y_N if counts.min() >= 2 and n_val >= len(counts) else None
        return train_test_split(np.arange(len(y_N)), test_size=n_val, random_state=seed % (2**32), stratify=stratify)

    def _train(self, X_t, y_t, X_val, y_val, seed, epochs):
        """Adam on mean CE; with validation rows, stop early and return the best epoch's net."""
        gen = torch_generator(seed)
        net = _Net(X_t.shape[1], tuple(int(h) for h in self.hidden), len(self.classes_), gen)
        optimizer = torch.optim.Adam(net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
        n, batch = len(y_t), max(1, int(self.batch_size))
        best_loss, best_state, best_epoch, stale = np.inf, None, epochs, 0
        for epoch in range(1, epochs + 1):
            net.train()
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(X_t[rows], dropout=float(self.dropout), gen=gen), y_t[rows])
                loss.backward()
                optimizer.step()
            if X_val is None:
                continue
            net.eval()
            with torch.no_grad():
                val_loss = F.cross_entropy(net(X_val), y_val).item()
            if val_loss < best_loss - 1e-4:
                best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(net.state_dict()), epoch, 0
            else:
                stale += 1
                if stale >= int(self.patience):
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        return net, best_epoch

    # -- prediction ---------------------------------------------------------

    def _inputs(self, X) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return as_float_tensor((X - self.mean_) / self.scale_)

    def _run(self, X, fn) -> np.ndarray:
        X_t = self._inputs(X)
        self.net_.eval()
        with torch.no_grad(), torch_threads(self.n_threads):
            parts = [fn(X_t[start:start + INFER_ROWS]) for start in range(0, len(X_t), INFER_ROWS)]
        if not parts:
            return fn(X_t).numpy()
        return np.concatenate(parts)

    def predict_proba(self, X):
        """Deterministic probabilities (dropout off)."""
        return self._run(X, lambda x: softmax_np(self.net_(x))).astype(np.float64)

    def predict(self, X):
        probs_N_C = self.predict_proba(X)
        return self.classes_[np.argmax(probs_N_C, axis=1)]

    def _has_dropout(self):
        return float(self.dropout) > 0 and len(tuple(self.hidden)) > 0

    @available_if(_has_dropout)
    def predict_proba_samples(self, X, k):
        """``(N, k, C)`` float32 MC-dropout probabilities; sample j applies dropout mask j to every item."""
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        check_is_fitted(self)
        masks = [torch.from_numpy(m[:k]) for m in self.dropout_masks(k)]
        return self._run(X, lambda x: softmax_np(self.net_(x, masks=masks)))

    def dropout_masks(self, k: int) -> list[np.ndarray]:
        """Per hidden layer, the (>= k, H) scaled keep-masks; row j is posterior sample j."""
        check_is_fitted(self)
        if self._mask_cache is None or len(self._mask_cache[0]) < k:
            keep = 1.0 - float(self.dropout)
            # One stream per layer, filled row by row: the first k rows never change with k.
            self._mask_cache = [
                ((np.random.default_rng([self._sample_seed, i]).random((k, layer.out_features)) < keep)
                 / keep).astype(np.float32)
                for i, layer in enumerate(self.net_.hidden)
            ]
        return self._mask_cache

    def embed(self, X):
        """Penultimate activations in eval mode (deterministic), float32 (N, H)."""
        return self._run(X, lambda x: self.net_.features(x))

    def linear_head(self, X):
        """Last-layer influence: ``(W_C_D, Phi_N_D, l2)`` for the output layer only.

        ``W`` is the output layer's weights with its bias as the last column,
        ``Phi`` the penultimate activations of X with a constant 1 appended, and
        ``l2 = weight_decay * n_fit_rows``: Adam's coupled L2 on the *mean*
        cross-entropy is ``sum CE + (l2/2) ||W||^2`` with that l2. The body of the
        network is treated as a fixed feature map, and ``W`` is where training
        (with dropout, early stopping) left it, close to but not exactly the
        minimizer of that objective, so influence is last-layer and approximate.
        """
        Phi = self.embed(X).astype(np.float64)
        Phi_N_D = np.hstack([Phi, np.ones((len(Phi), 1))])
        out = self.net_.out
        W_C_D = torch.cat([out.weight, out.bias[:, None]], dim=1).detach().numpy().astype(np.float64)
        return W_C_D, Phi_N_D, float(self.weight_decay) * self.n_fit_rows_

"""Bring your own model: the two examples the README shows, tested in tests/server/test_byom.py.

Name them in a project as ``examples.byom:sklearn_pipeline`` or ``examples.byom:torch_mlp``
(the module must be importable by the server: installed, or on PYTHONPATH).
"""
from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from torch import nn

from assay.models import TorchClassifier


def sklearn_pipeline(C: float = 10.0):
    """Any scikit-learn classifier or pipeline with predict_proba works as it is.

    It is fitted on Assay's features of each item (for text: MiniLM sentence embeddings by default).
    """
    return make_pipeline(Normalizer(), LogisticRegression(C=C, max_iter=1000))


def two_layer_net(n_features: int, n_classes: int) -> nn.Module:
    """A torch module mapping (N, n_features) float32 features to (N, n_classes) logits.

    The dropout layer gives posterior samples (MC dropout), so BALD-type strategies work.
    """
    return nn.Sequential(nn.Linear(n_features, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, n_classes))


def torch_mlp(epochs: int = 100, lr: float = 1e-2, standardize: bool = False):
    """The factory Assay calls: it returns an unfitted model."""
    return TorchClassifier(two_layer_net, epochs=epochs, lr=lr, standardize=standardize)

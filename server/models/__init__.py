"""Models: scikit-learn-style classifiers plus the optional outputs strategies use.

Pure Python (numpy, scipy, scikit-learn, torch): no Flask, no database. Used by
the server's retrain worker and by the simulator.

* :class:`LogisticRegression` (``logreg``, the default): Laplace posterior samples,
  its features as embeddings, and an exact linear head for influence.
* :class:`BootstrapEnsemble` (``ensemble``): a committee of any classifier; members are samples.
* :class:`MLPClassifier` (``mlp``): torch MLP with fixed-mask MC dropout, penultimate
  embeddings and a last-layer head.
* :class:`TorchClassifier`: adapter for any user ``torch.nn.Module``.

:func:`make_model` loads a model setting, :func:`capabilities` says what it can
give, :func:`check_model` tries it on a small sample.
"""
from .ensemble import BootstrapEnsemble
from .logreg import LogisticRegression
from .mlp import MLPClassifier
from .registry import (
    BUILTIN_MODELS,
    ENTRY_POINT_GROUP,
    ModelError,
    capabilities,
    check_model,
    make_model,
    missing_for,
    n_samples_supported,
)
from .torch_adapter import TorchClassifier

__all__ = [
    "BUILTIN_MODELS", "ENTRY_POINT_GROUP", "BootstrapEnsemble", "LogisticRegression", "MLPClassifier",
    "ModelError", "TorchClassifier", "capabilities", "check_model", "make_model", "missing_for",
    "n_samples_supported",
]

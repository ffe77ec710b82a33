"""Models: scikit-learn-style classifiers plus the optional outputs strategies use.

Pure Python (numpy, scipy, scikit-learn, torch): no Flask, no database. Used by
the server's retrain worker and by the simulator. torch is imported only when a
torch model is first used (importing it costs seconds that a logreg project
should not pay).

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

# The torch models, imported on first use (PEP 562): see the module docstring.
_LAZY = {"MLPClassifier": ".mlp", "TorchClassifier": ".torch_adapter"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILTIN_MODELS", "ENTRY_POINT_GROUP", "BootstrapEnsemble", "LogisticRegression", "MLPClassifier",
    "ModelError", "TorchClassifier", "capabilities", "check_model", "make_model", "missing_for",
    "n_samples_supported",
]

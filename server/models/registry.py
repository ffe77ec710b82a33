"""Turning a project's model setting into a model, and checking what it can do.

A model setting is one of:

* a built-in name: ``logreg``, ``ensemble``, ``mlp``;
* an import path ``package.module:factory`` (``factory`` may be a dotted
  attribute path), where ``factory(**params)`` returns an UNFITTED model, so a
  scikit-learn class such as ``sklearn.linear_model:LogisticRegression`` works
  as it is;
* the name of an entry point in the group ``assay.models`` whose object is
  such a factory.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import numbers

import numpy as np
from sklearn.base import clone

from assay.strategies import EMBEDDINGS, LINEAR_HEAD, PROBS, SAMPLES
from assay.strategies import get as get_strategy

from .ensemble import BootstrapEnsemble
from .logreg import LogisticRegression
from .params import ParamError, check_params

ENTRY_POINT_GROUP = "assay.models"


def _mlp(**params):
    # torch takes seconds to import: load it only when a project actually uses the MLP,
    # so creating or serving a logreg project never pays for it.
    from .mlp import MLPClassifier

    return MLPClassifier(**params)


BUILTIN_FACTORIES = {
    "logreg": LogisticRegression,
    "ensemble": BootstrapEnsemble,
    "mlp": _mlp,
}
BUILTIN_MODELS = frozenset(BUILTIN_FACTORIES)


def builtin_params(name: str) -> dict:
    """A built-in model's parameter schema (its class's ``PARAMS``): names, types and bounds."""
    if name == "mlp":
        from .mlp import MLPClassifier  # torch: only when the MLP is asked about

        return MLPClassifier.PARAMS
    return {"logreg": LogisticRegression, "ensemble": BootstrapEnsemble}[name].PARAMS

# Posterior samples drawn by check_model when the model claims to have them.
_CHECK_SAMPLES = 3


class ModelError(ValueError):
    """A model setting that cannot be loaded, or a model that breaks the protocol."""


def make_model(spec: str, **params):
    """An unfitted model from a built-in name, ``package.module:factory`` or an entry point."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError(f"a model setting must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec in BUILTIN_FACTORIES:
        factory, origin = BUILTIN_FACTORIES[spec], f"built-in model {spec!r}"
        try:
            check_params(builtin_params(spec), params, origin)
        except ParamError as exc:
            raise ModelError(str(exc)) from None
    elif ":" in spec:
        factory, origin = _load_import_path(spec), f"factory {spec!r}"
    else:
        factory, origin = _load_entry_point(spec), f"entry point {spec!r} (group {ENTRY_POINT_GROUP})"
    model = _call_factory(factory, params, origin)
    _check_protocol(model, origin)
    return model


def _load_import_path(spec: str):
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise ModelError(f"model path {spec!r} must look like 'package.module:factory'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"cannot import module {module_name!r} for model {spec!r}: {exc}. "
                         "Check the spelling and that the package is installed in the server's environment") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelError(f"module {module_name!r} has no attribute {attr_path!r} (model {spec!r}); "
                             "name a factory function or classifier class defined there") from None
    return obj


def _load_entry_point(name: str):
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        registered = sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        raise ModelError(
            f"unknown model {name!r}: not a built-in ({', '.join(sorted(BUILTIN_MODELS))}), "
            f"not an import path 'package.module:factory', and no entry point of that name in group "
            f"{ENTRY_POINT_GROUP!r}" + (f" (registered: {', '.join(registered)})" if registered else "")
        )
    try:
        return found[0].load()
    except Exception as exc:  # noqa: BLE001 - any failure to import a plug-in is the plug-in's
        raise ModelError(f"entry point {name!r} ({found[0].value}) failed to load: {exc}") from None


def _call_factory(factory, params: dict, origin: str):
    if not callable(factory):
        if _has_protocol(factory):
            # A module-level estimator instance: use a fresh unfitted copy of it.
            model = clone(factory)
            return model.set_params(**params) if params else model
        raise ModelError(f"{origin} is a {type(factory).__name__}, not a callable that returns a model")
    try:
        return factory(**params)
    except TypeError as exc:
        raise ModelError(f"{origin} does not accept the parameters {sorted(params)}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - report, with where it came from
        raise ModelError(f"{origin} raised {type(exc).__name__} while building the model: {exc}") from None


def _has_protocol(obj) -> bool:
    return callable(getattr(obj, "fit", None)) and callable(getattr(obj, "predict_proba", None))


def _check_protocol(model, origin: str) -> None:
    if inspect.isclass(model):
        raise ModelError(f"{origin} returned the class {model.__name__}, not an instance; return {model.__name__}()")
    missing = [name for name in ("fit", "predict_proba") if not callable(getattr(model, name, None))]
    if missing:
        raise ModelError(f"{origin} returned a {type(model).__name__}, which has no {' or '.join(missing)}; "
                         "a model needs fit(X, y) and predict_proba(X). Most scikit-learn classifiers have both; "
                         "those without predict_proba need an option (SVC(probability=True), "
                         "SGDClassifier(loss='log_loss')) or a wrapper (CalibratedClassifierCV(LinearSVC()))")


def capabilities(model) -> frozenset[str]:
    """What the model can give strategies: PROBS always, plus SAMPLES, EMBEDDINGS, LINEAR_HEAD."""
    have = {PROBS}
    if hasattr(model, "predict_proba_samples"):
        have.add(SAMPLES)
    if hasattr(model, "embed"):
        have.add(EMBEDDINGS)
    if hasattr(model, "linear_head"):
        have.add(LINEAR_HEAD)
    return frozenset(have)


def missing_for(strategy, model) -> set[str]:
    """The capabilities ``strategy`` (a Strategy or its name) needs that ``model`` lacks."""
    if isinstance(strategy, str):
        strategy = get_strategy(strategy)
    return set(strategy.needs) - capabilities(model)


def check_model(model, X_small, y_small):
    """Fit a copy of ``model`` on a small sample and check it keeps the protocol.

    Returns the fitted copy; raises :class:`ModelError` saying what is wrong.
    """
    name = type(model).__name__
    X_small = np.asarray(X_small)
    y_small = np.asarray(y_small)
    try:
        candidate = clone(model)
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: fit the given instance
        candidate = model
    try:
        fitted = candidate.fit(X_small, y_small)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{name}.fit failed on {len(y_small)} labeled rows with {type(exc).__name__}: {exc}. "
                         "The model must accept a float array (N, D) and a label array (N,)") from None
    if fitted is not candidate:
        if fitted is None:
            raise ModelError(f"{name}.fit returned None; it must return self")
        candidate = fitted
    classes = getattr(candidate, "classes_", None)
    if classes is None:
        raise ModelError(f"{name} has no classes_ after fit; set classes_ = np.unique(y) so the server "
                         "knows which probability column is which label")
    expected = set(np.unique(y_small).tolist())
    if set(np.asarray(classes).tolist()) != expected:
        raise ModelError(f"{name}.classes_ is {list(classes)} but the labels were {sorted(expected, key=str)}; "
                         "classes_ must list exactly the labels seen in fit")
    try:
        probs = np.asarray(candidate.predict_proba(X_small), dtype=float)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{name}.predict_proba failed with {type(exc).__name__}: {exc}") from None
    _check_probs(name, "predict_proba", probs, (len(X_small), len(classes)))
    if hasattr(candidate, "predict_proba_samples"):
        try:
            samples = np.asarray(candidate.predict_proba_samples(X_small, _CHECK_SAMPLES), dtype=float)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{name}.predict_proba_samples failed with {type(exc).__name__}: {exc}") from None
        _check_probs(name, "predict_proba_samples", samples, (len(X_small), _CHECK_SAMPLES, len(classes)))
    return candidate


def _check_probs(name: str, method: str, probs: np.ndarray, shape: tuple) -> None:
    if probs.shape != shape:
        raise ModelError(f"{name}.{method} returned shape {probs.shape}, expected {shape} "
                         "(one row per item, one column per entry of classes_, in that order)")
    if not np.all(np.isfinite(probs)):
        raise ModelError(f"{name}.{method} returned NaN or infinite values; check the model's "
                         "numerics (e.g. features need scaling, or a softmax overflowed)")
    if probs.size and (probs.min() < 0 or np.max(np.abs(probs.sum(axis=-1) - 1.0)) > 1e-4):
        raise ModelError(f"{name}.{method} rows are not probabilities (each must be >= 0 and sum to 1); "
                         "return softmax outputs, not logits or scores")


def n_samples_supported(model) -> int | None:
    """How many posterior samples ``predict_proba_samples`` can give at most (None: no limit).

    A committee has as many samples as members; ask for ``min(k, this)``.
    """
    n = getattr(model, "n_members", None)
    return int(n) if isinstance(n, numbers.Integral) else None

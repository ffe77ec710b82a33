"""make_model, capabilities, missing_for and check_model."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.pipeline import Pipeline

from assay import strategies
from assay.models import (
    BUILTIN_MODELS,
    BootstrapEnsemble,
    LogisticRegression,
    MLPClassifier,
    ModelError,
    TorchClassifier,
    capabilities,
    check_model,
    make_model,
    missing_for,
    n_samples_supported,
)
from assay.strategies import EMBEDDINGS, LINEAR_HEAD, PROBS, SAMPLES

FACTORIES = "tests.models.model_factories"


@pytest.fixture(scope="module")
def small():
    X, y = load_digits(return_X_y=True)
    rows = np.random.default_rng(0).permutation(len(y))[:80]
    return X[rows] / 16.0, np.array(["d%d" % v for v in y[rows]])


def test_builtins_with_params():
    assert BUILTIN_MODELS == {"logreg", "ensemble", "mlp"}
    assert isinstance(make_model("logreg", l2=3.0), LogisticRegression) and make_model("logreg", l2=3.0).l2 == 3.0
    assert isinstance(make_model("ensemble", n_members=4), BootstrapEnsemble)
    assert make_model("mlp", hidden=(8,)).hidden == (8,)
    with pytest.raises(ModelError, match="has no parameter 'nonsense'; it takes fit_intercept"):
        make_model("logreg", nonsense=1)


def test_sklearn_class_by_import_path(small):
    X, y = small
    model = make_model("sklearn.linear_model:LogisticRegression", C=0.5, max_iter=500)
    assert model.C == 0.5
    assert capabilities(model) == {PROBS}
    fitted = check_model(model, X, y)
    assert fitted is not model  # check_model fits a copy
    assert fitted.predict_proba(X).shape == (80, len(np.unique(y)))


def test_pipeline_factory_by_import_path(small):
    X, y = small
    model = make_model(f"{FACTORIES}:scaled_logreg", C=2.0)
    assert isinstance(model, Pipeline) and model.named_steps["clf"].C == 2.0
    fitted = check_model(model, X, y)
    assert list(fitted.classes_) == sorted(set(y))


def test_prebuilt_estimator_instance_is_cloned():
    model = make_model(f"{FACTORIES}:prebuilt")
    assert isinstance(model, Pipeline) and not hasattr(model.named_steps["clf"], "classes_")
    assert make_model(f"{FACTORIES}:prebuilt", clf__C=3.0).named_steps["clf"].C == 3.0


@pytest.mark.parametrize("spec, message", [
    ("no_such_package_xyz.models:make", "cannot import module 'no_such_package_xyz.models'"),
    ("sklearn.linear_model:NoSuchModel", "has no attribute 'NoSuchModel'"),
    ("sklearn.linear_model:", "must look like 'package.module:factory'"),
    ("nosuchmodel", "not a built-in .*entry point"),
    ("", "non-empty string"),
    (f"{FACTORIES}:not_a_model", "has no fit or predict_proba"),
    (f"{FACTORIES}:returns_class", "returned the class NaNProbs, not an instance"),
    ("sklearn.linear_model:LinearRegression", "has no predict_proba"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ModelError, match=message):
        make_model(spec)


def test_entry_point(tmp_path, monkeypatch, small):
    dist = tmp_path / "assay_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: assay-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[assay.models]\ndemo-pipeline = {FACTORIES}:scaled_logreg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = make_model("demo-pipeline", C=0.3)
    assert isinstance(model, Pipeline) and model.named_steps["clf"].C == 0.3
    with pytest.raises(ModelError, match="registered: demo-pipeline"):
        make_model("demo-other")


def test_capabilities_and_missing_for():
    sk = make_model("sklearn.linear_model:LogisticRegression")
    assert capabilities(make_model("logreg")) == {PROBS, SAMPLES, EMBEDDINGS, LINEAR_HEAD}
    assert capabilities(make_model("ensemble")) == {PROBS, SAMPLES}
    assert capabilities(make_model("mlp")) == {PROBS, SAMPLES, EMBEDDINGS, LINEAR_HEAD}
    # Without dropout an MLP has no posterior samples to offer.
    assert SAMPLES not in capabilities(MLPClassifier(dropout=0.0))
    assert missing_for("batchbald", sk) == {SAMPLES}
    assert missing_for("power_bald", sk) == {SAMPLES}
    assert missing_for("influence", make_model("ensemble")) == {LINEAR_HEAD}
    assert missing_for(strategies.get("dpp"), sk) == {EMBEDDINGS}
    assert missing_for("margin", sk) == set()
    assert missing_for("influence", make_model("logreg")) == set()


@pytest.mark.parametrize("factory, message", [
    ("NaNProbs", "NaN or infinite"),
    ("WrongShape", r"returned shape \(80, \d+\), expected \(80, \d+\)"),
    ("Logits", "not probabilities"),
    ("FailsInFit", "fit failed on 80 labeled rows with RuntimeError: cannot fit today"),
    ("NoClasses", "has no classes_ after fit"),
    ("FitReturnsNone", "fit returned None"),
])
def test_check_model_catches_broken_models(factory, message, small):
    X, y = small
    with pytest.raises(ModelError, match=message):
        check_model(make_model(f"{FACTORIES}:{factory}"), X, y)


def test_check_model_checks_posterior_samples(small):
    X, y = small

    class BadSamples(LogisticRegression):
        def predict_proba_samples(self, X, k):
            return super().predict_proba_samples(X, k)[:, :1]

    with pytest.raises(ModelError, match="predict_proba_samples returned shape"):
        check_model(BadSamples(), X, y)
    for name in sorted(BUILTIN_MODELS):
        check_model(make_model(name, random_state=0), X, y)


def test_torch_model_by_import_path(small):
    X, y = small
    model = make_model(f"{FACTORIES}:torch_mlp", epochs=5, random_state=0)
    assert isinstance(model, TorchClassifier)
    fitted = check_model(model, X, y)
    assert SAMPLES in capabilities(fitted)


def test_sample_limits():
    assert n_samples_supported(make_model("ensemble", n_members=7)) == 7
    assert n_samples_supported(make_model("logreg")) is None
    assert n_samples_supported(make_model("mlp")) is None


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_every_built_in_parameter_has_bounds_and_the_defaults_fit_them(name):
    """Issue 26: a project's model_params reach the shared retrain worker; each built-in says what it takes."""
    from assay.models.params import check_params
    from assay.models.registry import builtin_params

    model = make_model(name)
    defaults = model.get_params(deep=False)
    assert set(builtin_params(name)) == set(defaults)
    check_params(builtin_params(name), defaults, name)

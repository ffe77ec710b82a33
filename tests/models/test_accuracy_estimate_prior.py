"""The retrain's accuracy estimate reuses the prior its fit chose instead of choosing it again in every fold."""
from __future__ import annotations

import numpy as np

from assay.learning import job
from assay.models import LogisticRegression


def test_the_folds_reuse_the_chosen_prior(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=60) > 0, "a", "b").astype(object)
    fitted = LogisticRegression(random_state=0).fit(X, y)
    assert fitted.l2_method_ == "cv"
    seen = {}

    def fake_estimate(model, params, *args, **kwargs):
        seen["params"] = params
        return 0.9, 0.01, "5-fold stratified CV"

    monkeypatch.setattr(job, "estimate_accuracy", fake_estimate)
    project = {"model": "logreg", "model_params": {}, "multi_label": False, "labels": ["a", "b"]}
    version = {}
    job._add_accuracy(version, project, X, list(y), {}, 0, fitted=fitted)
    assert seen["params"] == {"l2": fitted.l2_, "intercept_scaling": fitted.intercept_scaling_}
    assert version["accuracy"] == 0.9
    # A prior the project fixed is left alone, and so is a model without a chosen one.
    job._add_accuracy({}, {**project, "model_params": {"l2": 0.5}}, X, list(y), {}, 0, fitted=fitted)
    assert seen["params"] == {"l2": 0.5}
    job._add_accuracy({}, project, X, list(y), {}, 0, fitted=None)
    assert seen["params"] == {}

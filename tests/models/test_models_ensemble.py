"""BootstrapEnsemble: members as posterior samples, class columns aligned across members."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

import assay.models.ensemble as ensemble_module
from assay.models import BootstrapEnsemble, LogisticRegression


def _data():
    rng = np.random.default_rng(0)
    y = np.array(["common"] * 30 + ["other"] * 29 + ["rare"])
    X = rng.normal(size=(60, 3)) + np.select([y == "common", y == "other"], [0.0, 2.0], 4.0)[:, None]
    return X, y


def test_members_missing_a_class_are_aligned(monkeypatch):
    X, y = _data()
    monkeypatch.setattr(ensemble_module, "_RESAMPLE_TRIES", 1)  # accept the first resample, rare class or not
    model = BootstrapEnsemble(n_members=12, random_state=0).fit(X, y)
    assert list(model.classes_) == ["common", "other", "rare"]
    missed = [j for j, m in enumerate(model.estimators_) if "rare" not in m.classes_]
    kept = [j for j, m in enumerate(model.estimators_) if "rare" in m.classes_]
    assert missed and kept  # (1 - 1/60)^60 ~ 0.36 of resamples miss the single "rare" row
    samples = model.predict_proba_samples(X, 12)
    assert samples.shape == (60, 12, 3)
    np.testing.assert_allclose(samples.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(samples[:, missed, 2], 0.0)
    j = kept[0]
    np.testing.assert_allclose(samples[:, j], model.estimators_[j].predict_proba(X))
    np.testing.assert_allclose(model.predict_proba(X), samples.mean(axis=1))


def test_resamples_are_redrawn_to_keep_every_class():
    X, y = _data()
    model = BootstrapEnsemble(n_members=12, random_state=0).fit(X, y)
    assert all(len(m.classes_) == 3 for m in model.estimators_)


def test_any_sklearn_classifier_and_k_limit():
    X, y = _data()
    model = BootstrapEnsemble(DecisionTreeClassifier(max_depth=3), n_members=4, random_state=1).fit(X, y)
    assert all(isinstance(m, DecisionTreeClassifier) for m in model.estimators_)
    # Each member got its own seed from the committee's random_state.
    assert len({m.random_state for m in model.estimators_}) == 4
    assert model.predict_proba_samples(X, 4).shape == (60, 4, 3)
    with pytest.raises(ValueError, match="raise n_members"):
        model.predict_proba_samples(X, 5)
    assert isinstance(BootstrapEnsemble().fit(X, y).estimators_[0], LogisticRegression)

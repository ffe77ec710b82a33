"""Model factories the loading tests name by import path (tests.models.model_factories:NAME)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from assay.models import TorchClassifier


def scaled_logreg(C: float = 1.0):
    """A plain scikit-learn Pipeline: must work unchanged."""
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=C, max_iter=1000))])


def dropout_net(n_features, n_classes):
    return nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, n_classes))


def torch_mlp(**params):
    return TorchClassifier(dropout_net, **params)


class _Fitted(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self


class NaNProbs(_Fitted):
    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), np.nan)


class WrongShape(_Fitted):
    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_) + 1), 1.0 / (len(self.classes_) + 1))


class Logits(_Fitted):
    def predict_proba(self, X):
        return np.tile(np.arange(len(self.classes_), dtype=float) * 3.0, (len(X), 1))


class FailsInFit(_Fitted):
    def fit(self, X, y):
        raise RuntimeError("cannot fit today")

    def predict_proba(self, X):
        raise AssertionError("unreachable")


class NoClasses(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.n_ = len(np.unique(y))
        return self

    def predict_proba(self, X):
        return np.full((len(X), self.n_), 1.0 / self.n_)


class FitReturnsNone(_Fitted):
    def fit(self, X, y):
        super().fit(X, y)

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


def not_a_model():
    return {"fit": None}


def returns_class():
    return NaNProbs


prebuilt = scaled_logreg(C=0.5)

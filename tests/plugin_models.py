"""Model factories named by import path in the plug-in tests (the worker process imports them)."""
from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.decomposition import PCA


def pca_logreg(n_components: int = 10, C: float = 10.0):
    """An ordinary scikit-learn pipeline: works unchanged."""
    return Pipeline([("pca", PCA(n_components=n_components)), ("clf", LogisticRegression(C=C, max_iter=500))])


class RaisingModel(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("this model always fails to fit")

    def predict_proba(self, X):
        raise RuntimeError("never fitted")


class SleepyModel(ClassifierMixin, BaseEstimator):
    def __init__(self, seconds=60.0):
        self.seconds = seconds

    def fit(self, X, y):
        time.sleep(self.seconds)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


class NaNModel(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), np.nan)


def raising():
    return RaisingModel()


def sleepy(seconds=60.0):
    return SleepyModel(seconds)


def nan_model():
    return NaNModel()

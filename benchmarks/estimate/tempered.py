"""Stress models for the accuracy estimate (issue 27): the default logreg with its probabilities made over- or
under-confident. `assay simulate ... --model tempered:cold` with this folder on PYTHONPATH."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from assay.models import make_model


class Tempered(ClassifierMixin, BaseEstimator):
    def __init__(self, temperature=1.0, random_state=None):
        self.temperature = temperature
        self.random_state = random_state

    def fit(self, X, y):
        self.inner_ = make_model("logreg", random_state=self.random_state).fit(X, y)
        self.classes_ = self.inner_.classes_
        return self

    def predict_proba(self, X):
        logp = np.log(np.clip(self.inner_.predict_proba(X), 1e-12, 1)) / self.temperature
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    def embed(self, X):
        return self.inner_.embed(X)  # TypiClust (default's first phase) clusters the model's embedding

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def hot():
    return Tempered(0.5)


def cold():
    return Tempered(2.0)

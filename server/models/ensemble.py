"""A bootstrap committee: posterior samples for any classifier that has predict_proba.

Each member is a clone of ``estimator`` fitted on a bootstrap resample of the
labeled rows. The committee's members are its posterior samples: member j is
one fixed function, so ``predict_proba_samples`` is consistent across items
and calls, which is what BALD and BatchBALD need.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from ._targets import check_class_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from assay.strategies import as_rng

from .logreg import LogisticRegression
from .params import SEED, Param

# A resample with fewer classes than the data is legal but makes a weak member;
# redraw a few times before accepting it.
_RESAMPLE_TRIES = 10


class BootstrapEnsemble(ClassifierMixin, BaseEstimator):
    """Mean of ``n_members`` bootstrap-fitted clones of ``estimator``.

    Parameters
    ----------
    estimator : an unfitted scikit-learn classifier with predict_proba
        (default: Assay's :class:`LogisticRegression`).
    n_members : committee size; ``predict_proba_samples(X, k)`` needs ``k <= n_members``.
    random_state : int, numpy Generator or None; fixes the resamples.
    """

    # Every parameter's type and range (assay.models.params): what a project's model_params may set. Each member
    # is one more fit per retrain.
    PARAMS = {
        "estimator": Param("object", nullable=True),
        "n_members": Param("int", 1, 100),
        "random_state": SEED,
    }

    def __init__(self, estimator=None, n_members=10, random_state=None):
        self.estimator = estimator
        self.n_members = n_members
        self.random_state = random_state

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=None, ensure_all_finite=False)
        check_class_labels(y)
        if int(self.n_members) < 1:
            raise ValueError(f"n_members must be at least 1, got {self.n_members!r}")
        self.classes_, y_N = np.unique(y, return_inverse=True)
        rng = as_rng(self.random_state)
        base = LogisticRegression() if self.estimator is None else self.estimator
        n = len(y_N)
        self.estimators_ = []
        self.columns_ = []
        for _ in range(int(self.n_members)):
            for _ in range(_RESAMPLE_TRIES):
                rows = rng.integers(n, size=n)
                if len(np.unique(y_N[rows])) == len(self.classes_):
                    break
            member = clone(base)
            if "random_state" in member.get_params(deep=False):
                member.set_params(random_state=int(rng.integers(2**31 - 1)))
            member.fit(X[rows], self.classes_[y_N[rows]])
            self.estimators_.append(member)
            # Where each member's columns go among the committee's classes.
            self.columns_.append(np.searchsorted(self.classes_, member.classes_))
        return self

    def _member_probs(self, X, members) -> np.ndarray:
        """``(N, len(members), C)``: each member's probabilities, zero for classes its resample missed."""
        out_N_K_C = np.zeros((len(X), len(members), len(self.classes_)))
        for j in members:
            out_N_K_C[:, j, self.columns_[j]] = self.estimators_[j].predict_proba(X)
        return out_N_K_C

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=None, ensure_all_finite=False)

    def predict_proba(self, X):
        X = self._check_X(X)
        return self._member_probs(X, range(len(self.estimators_))).mean(axis=1)

    def predict(self, X):
        probs_N_C = self.predict_proba(X)
        return self.classes_[np.argmax(probs_N_C, axis=1)]

    def predict_proba_samples(self, X, k):
        """``(N, k, C)``: the first k members' probabilities (the same k functions for every item)."""
        X = self._check_X(X)
        k = int(k)
        if not 1 <= k <= len(self.estimators_):
            raise ValueError(f"k must be between 1 and n_members={len(self.estimators_)}, got {k}; "
                             "raise n_members to get more posterior samples")
        return self._member_probs(X, range(k))

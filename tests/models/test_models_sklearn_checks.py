"""scikit-learn's own estimator checks, on every built-in model (small settings to stay quick)."""
from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from assay.models import BootstrapEnsemble, LogisticRegression, MLPClassifier


@parametrize_with_checks([
    LogisticRegression(random_state=0),
    BootstrapEnsemble(n_members=3, random_state=0),
    MLPClassifier(hidden=(16,), max_epochs=30, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)

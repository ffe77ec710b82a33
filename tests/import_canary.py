"""A module whose import is visible: tests check that a web request never imports an unregistered path."""
from sklearn.linear_model import LogisticRegression

IMPORTED = True


def model(**params):
    return LogisticRegression(**params)


def featurizer(**params):
    from assay.features import TfidfSVD

    return TfidfSVD(**params)

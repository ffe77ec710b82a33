"""Tabular featurizer on the UCI Adult census rows."""
from __future__ import annotations

import numpy as np
import pytest

from assay.features import FeaturizerError, TabularFeaturizer, dumps, loads, make_featurizer
from assay.models import LogisticRegression
from tests.data import load_adult


@pytest.fixture(scope="module")
def adult():
    """The first 2,000 rows as a CSV import would store them: every value a string, '?' for missing."""
    rows = load_adult(2000)
    labels = np.array([row.pop("income") for row in rows])
    return rows, labels


@pytest.fixture(scope="module")
def fitted(adult):
    rows, _ = adult
    featurizer = make_featurizer("tabular")
    return featurizer, featurizer.fit(rows).transform(rows)


def test_types_inferred_from_strings(fitted):
    featurizer, X = fitted
    assert X.dtype == np.float32 and np.all(np.isfinite(X))
    assert set(featurizer.numeric_) == {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss",
                                        "hours-per-week"}
    assert {"workclass", "occupation", "native-country", "sex"} <= set(featurizer.categorical_)
    assert X.shape[1] == featurizer.n_features_out_ == len(featurizer.feature_names_out_)


def test_numeric_standardized_and_categories_one_hot(fitted, adult):
    featurizer, X = fitted
    rows, _ = adult
    names = featurizer.feature_names_out_
    age = X[:, names.index("age")]
    assert abs(age.mean()) < 1e-4 and abs(age.std() - 1) < 1e-3
    np.testing.assert_allclose(age * featurizer.numeric_["age"][2] + featurizer.numeric_["age"][1],
                               [float(r["age"]) for r in rows], rtol=1e-5)
    sex = X[:, [i for i, n in enumerate(names) if n.startswith("sex=")]]
    np.testing.assert_array_equal(sex.sum(axis=1), 1.0)
    # "?" in workclass is missing: filled with the most frequent category, Private.
    missing = [i for i, r in enumerate(rows) if r["workclass"] == "?"]
    assert missing and np.all(X[missing, names.index("workclass=Private")] == 1.0)
    assert "workclass=?" not in names


def test_features_predict_income(fitted, adult):
    _, X = fitted
    _, y = adult
    model = LogisticRegression().fit(X[:1500], y[:1500])
    majority = np.mean(y[1500:] == "<=50K")
    assert model.score(X[1500:], y[1500:]) > majority + 0.04


def test_missing_numbers_get_median_and_indicator():
    rows = [{"x": "1", "c": "a"}, {"x": "?", "c": "b"}, {"x": 3, "c": None}, {"x": "", "c": "a"}, {"x": 5.0, "c": "a"}]
    featurizer = TabularFeaturizer().fit(rows)
    assert featurizer.feature_names_out_ == ["x", "x_missing", "c=a", "c=b"]
    X = featurizer.transform(rows + [{"x": None, "c": "zzz"}, {"c": "b"}])
    median_z = (3.0 - featurizer.numeric_["x"][1]) / featurizer.numeric_["x"][2]
    np.testing.assert_allclose(X[[1, 3, 5, 6], 0], median_z, rtol=1e-6)
    np.testing.assert_array_equal(X[:, 1], [0, 1, 0, 1, 0, 1, 1])
    np.testing.assert_array_equal(X[2, 2:], [1, 0])  # missing category: the most frequent, "a"
    np.testing.assert_array_equal(X[5, 2:], [0, 0])  # unseen category: all zeros


def test_columns_exclude_and_errors():
    rows = [{"id": 1, "a": 1.0, "b": "x", "empty": ""}, {"id": 2, "a": 2.0, "b": "y", "empty": None}]
    assert TabularFeaturizer(exclude=("id",)).fit(rows).columns_ == ["a", "b"]  # all-missing column dropped
    assert TabularFeaturizer(columns=["b"]).fit(rows).feature_names_out_ == ["b=x", "b=y"]
    with pytest.raises(FeaturizerError, match=r"columns \['nope'\] are in no row"):
        TabularFeaturizer(columns=["nope"]).fit(rows)
    with pytest.raises(FeaturizerError, match="no usable feature column"):
        TabularFeaturizer(columns=["empty"]).fit(rows)
    with pytest.raises(FeaturizerError, match="not a dict"):
        TabularFeaturizer().fit([["a", 1]])


def test_pickle_round_trip(fitted, adult):
    featurizer, X = fitted
    rows, _ = adult
    np.testing.assert_array_equal(loads(dumps(featurizer)).transform(rows[:30]), X[:30])

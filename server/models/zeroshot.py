"""Zero-shot from the label names: a classifier before the first label, and the prior the model starts from.

A text project's items and its label names live in one embedding space (MiniLM's unit-length sentence
vectors). Each label is read as text (``_`` as a space; its one-line description instead of the name when
the project gives one: "World" says more than "1"), embedded like an item, and an item's suggestion is
``softmax(cos(item, label) / T)``.

``TEMPERATURE``: chosen on held-out sets that no default was tuned on, by held-out log-loss over
T in {0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1} (docs/RESULTS.md, "Zero-shot from the label names"): the
CLINC150 validation split (3,000 utterances, 150 intent names) and 1,000 random AG News texts (4 topics,
described "World", "Sports", "Business", "Sci/Tech"). Both minima are at 0.05 (log-loss 1.22 and 0.935),
where the mean top probability is close to the accuracy (0.69 for 0.70 right; 0.64 for 0.64 right).

The same matrix, ``W0 = E / T`` (one row per label, no bias), is the centre of the logistic regression's
Gaussian prior (:class:`assay.models.LogisticRegression` with :meth:`set_label_prior`): with no labels its
fit is this classifier, and the labels move it away as far as their evidence says.

Pure numpy: the label vectors come from whoever embeds (``assay.learning.zeroshot``, ``assay simulate``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEMPERATURE = 0.05


def label_text(name: str, description: str | None = None) -> str:
    """The text a label is embedded as: its description when it has one, else its name with ``_`` as spaces."""
    description = (description or "").strip()
    if description:
        return description
    return str(name).replace("_", " ").strip()


@dataclass(frozen=True)
class LabelPrior:
    """The label names' vectors (unit rows, in the features' space) and the softmax temperature."""

    classes: tuple  # label names, in the project's order
    vectors_C_D: np.ndarray
    temperature: float = TEMPERATURE

    def __post_init__(self):
        vectors = np.asarray(self.vectors_C_D, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(self.classes):
            raise ValueError(f"one vector per label: {len(self.classes)} labels, vectors {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        object.__setattr__(self, "vectors_C_D", vectors / np.where(norms > 0, norms, 1.0))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    @property
    def dim(self) -> int:
        return self.vectors_C_D.shape[1]

    def logits(self, X_N_D) -> np.ndarray:
        """``cos(item, label) / T`` (items are unit rows already, as MiniLM gives them; others are normalized)."""
        X = np.asarray(X_N_D, dtype=np.float64)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return (X / np.where(norms > 0, norms, 1.0)) @ self.vectors_C_D.T / float(self.temperature)

    def predict_proba(self, X_N_D) -> np.ndarray:
        """``(N, C)`` suggestion probabilities, columns in ``classes`` order."""
        logits = self.logits(X_N_D)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def weights_for(self, classes) -> np.ndarray:
        """``(len(classes), D)``: each class's prior-mean weights ``e_c / T`` (zero for a class with no name)."""
        index = {c: i for i, c in enumerate(self.classes)}
        W = np.zeros((len(classes), self.dim))
        for row, c in enumerate(classes):
            if str(c) in index:
                W[row] = self.vectors_C_D[index[str(c)]] / float(self.temperature)
        return W


class ZeroShotClassifier:
    """The label-name classifier with the model interface the round needs (``classes_``, ``predict_proba``)."""

    def __init__(self, prior: LabelPrior):
        self.prior = prior
        self.classes_ = np.asarray(prior.classes, dtype=object)

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        return self.prior.predict_proba(X)

    def embed(self, X):
        return X

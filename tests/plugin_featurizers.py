"""Featurizers named by import path in the server tests (the worker process imports them)."""
from __future__ import annotations

import time

import numpy as np

from assay.features import TfidfSVD


class SlowFeaturizer(TfidfSVD):
    """TF-IDF that takes ``seconds`` per ``step`` texts and reports each step, like sentence embeddings on a
    big import: slower in all than the retrain timeout, but never silent for long."""

    supports_progress = True

    def __init__(self, seconds=0.25, step=10, n_components=16):
        super().__init__(n_components=n_components)
        self.seconds = seconds
        self.step = step

    def transform(self, items, progress=None):
        out = []
        for start in range(0, len(items), self.step):
            time.sleep(self.seconds)
            out.append(super().transform(items[start:start + self.step]))
            if progress:
                progress(min(start + self.step, len(items)), len(items))
        return np.vstack(out) if out else np.zeros((0, self.n_features_out_), dtype=np.float32)


def slow(seconds=0.25, step=10):
    return SlowFeaturizer(seconds, step)

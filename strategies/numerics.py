"""Array helpers that strategies and models share (models may import these; strategies import nothing of the server)."""
from __future__ import annotations

import numpy as np


def softmax_inplace(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, overwriting ``logits`` (which must be float)."""
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return logits

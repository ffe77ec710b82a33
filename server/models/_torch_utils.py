"""Helpers shared by the torch models: thread limits, seeded init, batched inference."""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

# Rows per forward pass at inference: bounds activation memory on big pools.
INFER_ROWS = 8192


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` intra-op threads, then restore the previous count.

    torch's thread count is process-wide; small networks gain nothing from more
    than a couple of threads and a retrain must not starve the web server.
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(int(seed) % (2**63 - 1))
    return gen


def seeded_linear(n_in: int, n_out: int, gen: torch.Generator) -> nn.Linear:
    """An ``nn.Linear`` initialized like torch's default but from ``gen``, never the global RNG."""
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out)
    with torch.no_grad():
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
        bound = 1.0 / math.sqrt(n_in) if n_in > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    return layer


def as_float_tensor(X) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))


def softmax_np(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits, dim=-1).numpy()

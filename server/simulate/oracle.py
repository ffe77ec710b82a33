"""The annotator of a simulation: it knows every label and hands out only the ones asked for."""
from __future__ import annotations

import numpy as np


class Oracle:
    """Answers label queries by position in the training split, and keeps the record of what it revealed.

    The simulator builds the model's labeled set only from :meth:`reveal`'s
    answers, so a label nobody asked for cannot reach the model. Asking twice
    for the same item is an error: a strategy must pick from the unlabeled pool.
    """

    def __init__(self, labels):
        self.__labels = np.asarray(labels, dtype=object).copy()
        self.__revealed: list[int] = []
        self.__seen: set[int] = set()

    def __len__(self) -> int:
        return len(self.__labels)

    def reveal(self, positions) -> list:
        positions = [int(p) for p in np.asarray(positions, dtype=np.intp).reshape(-1)]
        for p in positions:
            if not 0 <= p < len(self.__labels):
                raise IndexError(f"no item {p} in a pool of {len(self.__labels)}")
            if p in self.__seen:
                raise ValueError(f"item {p} was already labeled; a strategy must choose from the unlabeled pool")
        if len(set(positions)) != len(positions):
            raise ValueError(f"the batch {positions} names an item twice")
        self.__seen.update(positions)
        self.__revealed.extend(positions)
        return [self.__labels[p] for p in positions]

    @property
    def revealed(self) -> np.ndarray:
        """Positions revealed so far, in the order they were asked for."""
        return np.asarray(self.__revealed, dtype=np.intp)

    @property
    def n_revealed(self) -> int:
        return len(self.__revealed)

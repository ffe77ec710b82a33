"""Paths to the real data sets shipped in the repository, and small loaders, for the tests.

The tests read nothing outside the repository (no ``../shared``): see tests/datasets/README.md.
"""
from __future__ import annotations

import csv
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMS_PATH = os.path.join(REPO, "server", "demo", "sms_spam.tsv")
# The first 2,000 rows of UCI Adult's adult.data, with its header line (CC BY 4.0).
ADULT_PATH = os.path.join(REPO, "tests", "datasets", "adult_2000.csv")


def load_sms(n: int | None = None, distinct: bool = False) -> list[dict]:
    """The SMS Spam Collection shipped with the demo: [{"label", "text"}].

    ``distinct``: the first ``n`` distinct texts. The collection repeats some messages word for word (22 times in
    its first 1,000), and a label on one copy labels the others too (issue 29.5); tests that count labels or
    queue rows without being about that take distinct texts."""
    with open(SMS_PATH, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        rows = [{"label": label, "text": text} for label, text in reader]
    if distinct:
        seen: set = set()
        rows = [r for r in rows if not (r["text"] in seen or seen.add(r["text"]))]
    return rows[:n] if n else rows


def adult_lines(n: int) -> list[str]:
    """The header line and the first ``n`` rows of the shipped Adult subset, as in the file."""
    with open(ADULT_PATH, encoding="utf-8") as fh:
        lines = [line for _, line in zip(range(n + 1), fh)]
    assert len(lines) == n + 1, f"{ADULT_PATH} has fewer than {n} rows"
    return lines


def load_adult(n: int | None = None) -> list[dict]:
    """Rows of the shipped Adult subset as csv.DictReader reads them (every value a string, with its income)."""
    with open(ADULT_PATH, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, skipinitialspace=True))
    return rows[:n] if n else rows

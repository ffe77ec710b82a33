"""Paths to the real data sets and small loaders, shared by the tests."""
from __future__ import annotations

import csv
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
SMS_PATH = os.path.join(REPO, "server", "demo", "sms_spam.tsv")


def load_sms(n: int | None = None) -> list[dict]:
    """The SMS Spam Collection shipped with the demo: [{"label", "text"}]."""
    with open(SMS_PATH, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        rows = [{"label": label, "text": text} for label, text in reader]
    return rows[:n] if n else rows

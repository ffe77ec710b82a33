"""Small real data files for the simulator tests."""
from __future__ import annotations

import csv

import pytest

from tests.data import load_sms

SMS_ROWS = 400


@pytest.fixture(scope="session")
def sms_file(tmp_path_factory):
    """The first 400 SMS messages, tab-separated with the original header ``Label\\tSMS``."""
    path = tmp_path_factory.mktemp("sms") / "sms.tsv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("Label\tSMS\n")
        for row in load_sms(SMS_ROWS):
            fh.write(f"{row['label']}\t{row['text']}\n")
    return str(path)


@pytest.fixture
def iris_csv(tmp_path):
    """scikit-learn's iris as a CSV file with an id column, for the tabular path."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    path = tmp_path / "iris.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *bunch.feature_names, "species"])
        for i, (row, target) in enumerate(zip(bunch.data, bunch.target)):
            writer.writerow([f"r{i}", *row, bunch.target_names[target]])
    return str(path)

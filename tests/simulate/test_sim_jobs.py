"""``--jobs``: seeds and strategies in worker processes give the same curves as one process."""
from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from assay.simulate.command import simulate_command


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow  # spawning workers that import numpy, scikit-learn and torch takes seconds
def test_jobs_give_the_same_curves_as_one_process(iris_csv, tmp_path):
    args = [iris_csv, "--label-column", "species", "--exclude-columns", "id", "--strategies", "random,power_bald",
            "--initial", "6", "--budget", "15", "--batch", "3", "--seeds", "2", "--no-progress"]
    serial = CliRunner().invoke(simulate_command, args + ["--out", str(tmp_path / "a")])
    parallel = CliRunner().invoke(simulate_command, args + ["--out", str(tmp_path / "b"), "--jobs", "2"])
    assert serial.exit_code == 0 and parallel.exit_code == 0, serial.output + parallel.output
    strip = lambda rows: [{k: r[k] for k in ("strategy", "seed", "n_labels", "accuracy", "macro_f1")}  # noqa: E731
                          for r in rows]
    assert strip(_read(tmp_path / "a" / "curves.csv")) == strip(_read(tmp_path / "b" / "curves.csv"))

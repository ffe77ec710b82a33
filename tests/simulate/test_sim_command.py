"""``assay simulate`` end to end, on 400 real SMS messages and on a slice of the digits."""
from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from assay.simulate.command import simulate_command
from assay.simulate.report import SUMMARY_COLUMNS
from assay.simulate.run import CURVE_COLUMNS

BUDGET, INITIAL, BATCH = 60, 20, 10
ROUNDS = 1 + (BUDGET - INITIAL) // BATCH


def _read(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def sms_run(sms_file, tmp_path_factory):
    """One run of the command on SMS, shared by the checks below (it is the slow part)."""
    data = sms_file
    out = tmp_path_factory.mktemp("sms-out")
    result = CliRunner().invoke(simulate_command, [
        str(data), "--text-column", "SMS", "--label-column", "Label", "--strategies", "random,margin,power_bald",
        "--initial", str(INITIAL), "--batch", str(BATCH), "--budget", str(BUDGET), "--seeds", "2",
        "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result, out


def test_curves_have_one_row_per_strategy_seed_and_round(sms_run):
    _, out = sms_run
    columns, rows = _read(out / "curves.csv")
    assert tuple(columns) == CURVE_COLUMNS
    assert len(rows) == 3 * 2 * ROUNDS
    for strategy in ("random", "margin", "power_bald"):
        for seed in ("0", "1"):
            n = [int(r["n_labels"]) for r in rows if r["strategy"] == strategy and r["seed"] == seed]
            assert n == list(range(INITIAL, BUDGET + 1, BATCH))
    assert all(int(r["n_labels"]) <= BUDGET for r in rows)
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and 0.0 <= float(r["macro_f1"]) <= 1.0 for r in rows)
    assert all(float(r["fit_seconds"]) > 0 for r in rows)
    # Same seed, same initial labels, same model: the first point cannot depend on the strategy.
    for seed in ("0", "1"):
        first = {r["accuracy"] for r in rows if r["seed"] == seed and int(r["n_labels"]) == INITIAL}
        assert len(first) == 1


def test_every_estimator_beside_the_reported_one(sms_run):
    """estimators.csv: per round with a model, each candidate estimate with its interval; the reported one is
    among them and equals curves.csv's estimate; the candidates lean on the random strategy's uniform labels."""
    _, out = sms_run
    columns, rows = _read(out / "estimators.csv")
    _, curves = _read(out / "curves.csv")
    reported = {(r["strategy"], r["seed"], r["n_labels"]): r["estimated_accuracy"] for r in curves
                if r["estimated_accuracy"]}
    assert {"est_calibrated", "low_ppi", "high_uniform", "est_raw"} <= set(columns)
    assert {(r["strategy"], r["seed"], r["n_labels"]): r["est_calibrated"] for r in rows} == reported
    for r in rows:
        for name in ("calibrated", "uniform", "ppi"):
            if r[f"est_{name}"]:
                assert float(r[f"low_{name}"]) <= float(r[f"est_{name}"]) <= float(r[f"high_{name}"])
    # Under random every label is uniform: the uniform calibration has tests from its first model on.
    assert all(r["est_uniform"] for r in rows if r["strategy"] == "random")


def test_summary_table_and_plot(sms_run):
    result, out = sms_run
    columns, rows = _read(out / "summary.csv")
    assert tuple(columns) == SUMMARY_COLUMNS
    assert [r["strategy"] for r in rows] == ["random", "margin", "power_bald"]
    random = rows[0]
    assert random["ratio_note"] in ("1.00", "not reached")
    for r in rows:
        assert r["seeds"] == "2" and int(r["n_labels"]) == BUDGET
        full = float(r["full_data_accuracy"])
        assert 0.8 < full <= 1.0 and float(r["target_accuracy"]) == pytest.approx(0.95 * full, rel=1e-4)
        if r["labels_to_95"]:
            assert INITIAL <= int(r["labels_to_95"]) <= BUDGET
        else:
            assert r["ratio_note"] == "not reached"
    assert "full-data accuracy (logreg on all 280 training labels, 2 seeds)" in result.stdout
    for name in ("random", "margin", "power_bald"):
        assert any(line.startswith(name) for line in result.stdout.splitlines())
    assert _png_size(out / "curves.png") == (960, 540)
    assert "rounds" in result.stderr


def test_registered_as_an_assay_command(runner, iris_csv, tmp_path):
    result = runner.invoke(args=["simulate", iris_csv, "--label-column", "species", "--exclude-columns", "id",
                                 "--strategies", "margin", "--initial", "6", "--budget", "12", "--batch", "3",
                                 "--seeds", "1", "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 0, result.output
    _, rows = _read(tmp_path / "o" / "curves.csv")
    assert [int(r["n_labels"]) for r in rows] == [6, 9, 12]
    assert "no 'random' run" in result.stderr


def test_peers_run_on_the_same_fits(tmp_path):
    """modAL's margin and entropy top-k on our fitted model must retrace our margin and entropy exactly."""
    pytest.importorskip("modAL")
    pytest.importorskip("baal")
    result = CliRunner().invoke(simulate_command, [
        "sklearn:digits", "--strategies", "random,margin,entropy,bald", "--peers", "--max-pool", "300",
        "--initial", "20", "--batch", "10", "--budget", "50", "--seeds", "1", "--out", str(tmp_path / "o"),
        "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    _, rows = _read(tmp_path / "o" / "curves.csv")
    names = {r["strategy"] for r in rows}
    assert {"modal_uncertainty", "modal_margin", "modal_entropy", "baal_bald", "baal_powerbald"} <= names
    curve = lambda s: [(r["n_labels"], r["accuracy"]) for r in rows if r["strategy"] == s]  # noqa: E731
    assert all(len(curve(s)) == 4 for s in names)
    assert curve("modal_margin") == curve("margin")
    assert curve("modal_entropy") == curve("entropy")
    # Same round seeds as our bald, so the same posterior samples: BaaL's BALD top-k retraces it too.
    assert curve("baal_bald") == curve("bald")
    assert (tmp_path / "cache" / "sklearn-digits" / "digit-1796.png").exists()


def test_a_fixed_test_set(iris_csv, tmp_path):
    """--test-data: all of DATA is the pool and the model is scored on the other file only: 10 rows of
    'setosa' (a one-class test file is allowed), so every accuracy is a multiple of 0.1, and high."""
    rows = list(csv.DictReader(open(iris_csv, newline="")))
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, part in ((train_path, rows[:40] + rows[50:90] + rows[100:140]),
                       (test_path, [r for r in rows[40:50]])):
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
    result = CliRunner().invoke(simulate_command, [
        str(train_path), "--test-data", str(test_path), "--label-column", "species", "--exclude-columns", "id",
        "--strategies", "random", "--initial", "6", "--budget", "12", "--batch", "3", "--seeds", "2",
        "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "the last 10 from --test-data" in result.stderr
    _, curve = _read(tmp_path / "o" / "curves.csv")
    accuracies = np.array([float(r["accuracy"]) for r in curve])
    np.testing.assert_allclose(accuracies * 10, np.round(accuracies * 10), atol=1e-9)
    assert accuracies.min() >= 0.9
    record = json.load(open(tmp_path / "o" / "run.json"))
    assert [(s["n_train"], s["n_test"]) for s in record["seeds"]] == [(120, 10), (120, 10)]


def test_test_data_must_hold_the_same_items(iris_csv, tmp_path, sms_file):
    result = CliRunner().invoke(simulate_command, [
        iris_csv, "--test-data", sms_file, "--label-column", "species", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "no column 'species'" in result.output


@pytest.mark.parametrize("args, message", [
    (["--strategies", "nope"], "unknown strategy 'nope'"),
    (["--strategies", "bald", "--model", "sklearn.naive_bayes:GaussianNB"], "needs samples"),
    (["--label-column", "kind"], "no column 'kind'"),
    (["--budget", "10", "--initial", "10"], "must exceed the initial labels"),
])
def test_mistakes_are_messages(iris_csv, tmp_path, args, message):
    base = [iris_csv, "--label-column", "species", "--out", str(tmp_path / "o"), "--no-progress"]
    result = CliRunner().invoke(simulate_command, base + args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_a_plug_in_model_warns_once_not_once_per_fit(tmp_path):
    """A model by import path on many classes with a label or two each: scikit-learn's regression hint came
    once per fit (5,628 lines in one run); now it never comes, and any other warning comes once per process."""
    import subprocess
    import sys

    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=8, n_informative=6, n_classes=12,
                               n_clusters_per_class=1, random_state=0)
    path = tmp_path / "table.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"f{i}" for i in range(8)] + ["label"])
        writer.writerows([*np.round(row, 3), f"c{label}"] for row, label in zip(X, y))
    plugin = tmp_path / "noisy_model.py"
    plugin.write_text(
        "import warnings\n"
        "from sklearn.ensemble import ExtraTreesClassifier\n"
        "class Noisy(ExtraTreesClassifier):\n"
        "    def fit(self, X, y):\n"
        "        warnings.warn('a plug-in warning on every fit', RuntimeWarning)\n"
        "        return super().fit(X, y)\n"
        "def make():\n"
        "    return Noisy(n_estimators=20)\n")
    for spec in ("sklearn.ensemble:ExtraTreesClassifier", "noisy_model:make"):
        done = subprocess.run(
            [sys.executable, "-c", "from assay.cli import main; main()", "simulate", str(path),
             "--model", spec, "--strategies", "random,margin", "--initial", "12", "--batch", "10",
             "--budget", "60", "--seeds", "2", "--out", str(tmp_path / "out"), "--no-progress"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
            env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
        assert done.returncode == 0, done.stderr
        assert "unique classes" not in done.stderr
        assert done.stderr.count("RuntimeWarning: a plug-in warning on every fit") <= 1, done.stderr
    assert done.stderr.count("RuntimeWarning: a plug-in warning on every fit") == 1

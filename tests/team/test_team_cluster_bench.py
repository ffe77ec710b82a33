"""benchmarks/team_cluster.py: several `assay serve` and `assay worker` processes on one database, with kills.

The quick run is the issue's check at smoke size on SQLite: two servers and two workers, one of each killed
with SIGKILL mid-run, and still no item handed to two annotators, none answered twice, no acknowledged label
missing from the export, and a model version recorded after the worker's job was retaken.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "team_cluster.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("team_cluster_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeBoss:
    """The export a server would stream, for the counting alone."""

    def __init__(self, rows):
        self.rows = rows

    def jsonl(self, path):
        assert "annotations=all" in path  # the collisions are only visible in every annotation
        return self.rows


def test_the_counts_see_double_service_double_answers_and_lost_labels():
    bench = load_bench()
    rows = [{"item_id": 1, "annotator": "import", "label": "ham"},  # a seed label is nobody's answer
            {"item_id": 2, "annotator": "ann00", "label": "ham"},
            {"item_id": 3, "annotator": "ann00", "label": "spam"},
            {"item_id": 3, "annotator": "ann01", "label": "spam"}]
    out = {"handed": {2: {"ann00"}, 3: {"ann00", "ann01"}, 4: {"ann01"}},
           "acked": [("ann00", 2, "ham"), ("ann00", 3, "spam"), ("ann01", 3, "spam"), ("ann01", 4, "ham"),
                     ("ann00", 2, "ham")]}
    counted = bench.count(FakeBoss(rows), 7, out)
    assert counted["handed_twice"] == 1
    assert counted["answered_twice"] == 1
    assert counted["lost"] == 1 and counted["lost_examples"] == [("ann01", 4, "ham")]
    assert counted["acknowledged"] == 5 and counted["acknowledged_distinct"] == 4
    assert counted["exported"] == 3

    clean = bench.count(FakeBoss(rows[:3]), 7, {"handed": {2: {"ann00"}, 3: {"ann00"}},
                                                 "acked": [("ann00", 2, "ham"), ("ann00", 3, "spam")]})
    assert (clean["handed_twice"], clean["answered_twice"], clean["lost"]) == (0, 0, 0)


@pytest.mark.slow
def test_quick_cluster_run_with_a_server_and_a_worker_killed_loses_nothing(tmp_path):
    out = tmp_path / "out.json"
    # SMS only (tests read no ../shared data) and TF-IDF, so the first job takes seconds, not a MiniLM pass.
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--sms-only", "--featurizer", "tfidf",
                           "--no-single", "--servers", "2", "--workers", "2", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    (r,) = json.loads(out.read_text())["results"]
    report = done.stdout[-3000:]
    assert (r["servers"], r["workers"]) == (2, 2)
    assert r["acknowledged"] > 200, report  # the clients really labeled, across the kills
    assert r["handed_twice"] == 0, report
    assert r["answered_twice"] == 0, report
    assert r["lost"] == 0, report
    assert r["errors"] == [] and r["server_errors"] == 0, report
    kills = r["kills"]
    assert kills["server_pids"] and kills["worker_pids"], report
    assert r["failovers"] > 0, report  # the killed server's clients moved to the other one
    assert kills["job_running_at_kill"], report
    assert r["versions_after_worker_kill"] >= 1, report  # the killed worker's job was retaken and recorded
    assert r["label"]["n"] == r["acknowledged"] and r["label"]["p99_ms"] > 0
    assert r["ok"] and done.returncode == 0, report
    assert "| GET queue p99 (ms) |" in done.stdout and "| POST label p99 (ms) |" in done.stdout

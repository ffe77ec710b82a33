"""The acquisition benchmark runs end to end at smoke sizes and prints its comparisons."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "acquisition.py"

# Each comparison row ends with a ratio cell ("0.16x", "3e-05x (1/33,720)") or says the peer is missing.
RATIO = r"[0-9.e+-]+x( \(1/[0-9,]+\))?"
MISSING = r"not installed \(pip install 'assay\[bench\]'\)"


# The peer libraries the comparisons run against; without them the script prints other rows than checked here.
PEERS = ("baal", "batchbald_redux", "dppy")


@pytest.mark.slow
def test_quick_run_prints_every_comparison():
    missing = [name for name in PEERS if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs the bench extra ({', '.join(missing)} not installed): "
                    "pip install -c .ci/constraints.txt -e '.[test,bench]'")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--seed", "3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for strategy in ("least_confidence", "margin", "entropy", "bald", "stochastic_batch power",
                     "stochastic_batch softmax", "stochastic_batch softrank", "power_bald end-to-end",
                     "batchbald (small pool)", "dpp.select", "influence_scores"):
        line = next((ln for ln in out.splitlines() if ln.startswith(strategy + " ")), None)
        assert line is not None, f"no row for {strategy}"
        assert re.search(r"\b(PASS|MISS)$", line), line
    for label in ("BALD / one pass (sum)", "BALD ours / BaaL", "PowerBALD ours / BaaL",
                  "PowerBALD / BatchBALD (ours)", "PowerBALD / BatchBALD (batchbald_redux)",
                  "select / dppy sample incl. eigendecomposition"):
        line = next((ln for ln in out.splitlines() if ln.startswith(label)), None)
        assert line is not None, f"no ratio row {label!r}"
        assert re.search(rf"  ({RATIO}|{MISSING})  ", line), line
    assert "versions: numpy" in out
    agreement = re.search(r"BALD max \|ours - BaaL\|\s+-\s+-\s+(\S+) nats", out)
    if agreement:  # BaaL installed: the same BALD on the same array
        assert float(agreement.group(1)) < 1e-9

"""A newcomer's first commands: fast to start, and short, clear output."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_python(code: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter on this checkout, with a database in ``tmp_path``."""
    env = {**os.environ, "ASSAY_DATABASE": str(tmp_path / "assay.sqlite"), "ASSAY_INSTANCE_PATH": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_importing_the_models_does_not_import_torch(tmp_path):
    result = run_python("import sys, assay.models; print('torch' in sys.modules)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_torch_models_still_load_on_first_use(tmp_path):
    code = ("import sys, assay.models as m; m.make_model('mlp'); assert 'torch' in sys.modules; "
            "from assay.models import MLPClassifier, TorchClassifier; print(MLPClassifier.__module__, "
            "TorchClassifier.__module__)")
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["assay.models.mlp", "assay.models.torch_adapter"]


def test_create_project_with_logreg_does_not_import_torch(tmp_path):
    code = ("import sys; from assay.cli import cli\n"
            "cli(['create-project', 'p', '--labels', 'a,b'], prog_name='assay', standalone_mode=False)\n"
            "print('torch' in sys.modules)")
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False"]


def test_help_lists_only_assays_commands_and_options(tmp_path):
    result = run_python("from assay.cli import main; main()", tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:")[1].split()
    for ours in ("create-project", "import", "export", "serve", "demo", "strategies", "simulate"):
        assert ours in commands
    for flasks in ("routes", "shell", "run"):
        assert flasks not in commands
    for option in ("--env-file", "--app", "--debug"):
        assert option not in result.stdout
    assert run_python("from assay.cli import main; main()", tmp_path, "routes").returncode != 0


HEAVY = ("torch", "sklearn", "sentence_transformers", "scipy", "pandas", "pyarrow")
LOADED = ("import sys, atexit\n"
          "atexit.register(lambda: print('LOADED', sorted(m for m in %r if m in sys.modules), file=sys.stderr))\n"
          "from assay.cli import main; main()\n" % (HEAVY,))


def _loaded(result) -> list[str]:
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("LOADED ")][-1]
    return eval(line[len("LOADED "):])  # noqa: S307 - our own print of a list of names


def test_help_imports_no_machine_learning_library(tmp_path):
    # Every command used to build the app (and import scikit-learn, scipy, pandas) first: 3-4 s of CPU for --help.
    result = run_python(LOADED, tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "export" in result.stdout
    assert _loaded(result) == []
    assert not (tmp_path / "assay.sqlite").exists()  # listing the commands opens no database either


def test_export_imports_no_machine_learning_library(tmp_path):
    assert run_python("from assay.cli import main; main()", tmp_path, "create-project", "p",
                      "--labels", "a,b").returncode == 0
    result = run_python(LOADED, tmp_path, "export", "p", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "wrote 0 rows" in result.stderr
    assert _loaded(result) == []

"""The README's tour and API examples, run as a newcomer would: after `assay demo`, on a new database."""
from __future__ import annotations

import json
import pathlib
import re
import shlex
import shutil
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def bash_block_after(heading_text: str) -> list[str]:
    """The commands of the first ```bash block after ``heading_text``, continuation lines joined."""
    rest = README[README.index(heading_text):]
    block = rest.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def without_comment(command: str) -> tuple[str, str]:
    code, _, comment = command.partition("   #")
    return code.strip(), comment.strip().lstrip("# ")


def as_after_the_demo(runner):
    """The demo's project and items (ids 1 and 1-5574), without waiting for its first retrain as `demo` does."""
    demo = ROOT / "server" / "demo" / "sms_spam.tsv"
    assert runner.invoke(args=["create-project", "sms-spam-demo", "--labels", "ham,spam"]).output.strip() == "1"
    result = runner.invoke(args=["import", "1", str(demo), "--text-column", "SMS", "--id-column", "none"])
    assert "imported 5574" in result.output, result.output


@pytest.fixture
def live(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's API examples use curl")
def test_the_readme_tour_and_api_examples_work_as_written(app, runner, live, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)  # the examples name files relative to the clone and write into it
    as_after_the_demo(runner)

    tour = [without_comment(c) for c in bash_block_after("## A short tour")]
    assert tour and all(code.startswith("assay ") for code, _ in tour)
    for code, comment in tour:
        args = shlex.split(code)[1:]
        if args[0] == "serve":
            continue
        result = runner.invoke(args=args)
        assert result.exit_code == 0, f"{code}: {result.output}"
        said = re.search(r"prints its id: (\d+)", comment)
        if said:
            assert result.output.strip() == said.group(1), code

    api = bash_block_after("Everything the CLI does, the JSON API does too")
    assert len(api) >= 5 and all(c.startswith("curl ") for c in api)
    for command in api:
        code, comment = without_comment(command)
        code = code.replace("localhost:5000", live).replace("curl -s ", "curl -sS --fail-with-body ", 1)
        out = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"{command}\n{out.stdout}{out.stderr}"
        if comment.startswith("{") and comment.endswith("}"):
            assert out.stdout.strip() == comment, command
        if comment.startswith("[{"):
            # Before the first model the queue is random, so only its shape is as shown.
            queue = json.loads(out.stdout)
            assert queue and all(set(item["data"]) == {"text"} for item in queue), out.stdout
    rows = (tmp_path / "news-labels.csv").read_text().splitlines()
    assert any(",5584," in row and ",sports," in row for row in rows), rows


def test_the_first_screen_installs_only_what_the_demo_needs_and_says_how_long():
    """The first command sets up and runs the demo; the second sets up and passes the tests (.ci/run runs both,
    as written, read from this block)."""
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    demo, tests = first_block[:2]
    assert demo.endswith(" && assay demo") and "[test]" not in demo and "-e ." in demo
    assert tests == "pip install -c .ci/constraints.txt -e '.[test]' && python -m pytest -q"
    before, after = README.split("```bash\n", 1)
    # The CPU build of torch is advised before the command it applies to.
    assert "--index-url https://download.pytorch.org/whl/cpu" in before
    intro = after.split("## A short tour", 1)[0]
    assert "--index-url" not in intro
    assert re.search(r"about [\d.]+ minutes once torch is there[^)]*\) and starts the server", intro)
    assert re.search(r"runs the whole suite: about \d+ minutes", intro)
    # It opens the labeling page, where the keys label, not the project list.
    assert "http://127.0.0.1:5000/projects/1/annotate" in intro
    assert "<http://127.0.0.1:5000/>" not in intro
    # The constraints file agrees: the pin does not choose the build.
    constraints = (ROOT / ".ci" / "constraints.txt").read_text()
    assert "the CPU wheel; a looser pin" not in constraints and "does not choose the build" in constraints


def test_ci_runs_the_readmes_two_commands_as_written():
    run = (ROOT / ".ci" / "run").read_text()
    extract = run.split("readme_install=", 1)[1].split("\n", 1)[0], run.split("readme_test=", 1)[1].split("\n", 1)[0]
    got = [subprocess.run(["bash", "-c", f"cd {shlex.quote(str(ROOT))}; echo {cmd}"], capture_output=True,
                          text=True, check=True).stdout.strip() for cmd in extract]
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert got == block[:2]
    assert 'eval "$readme_test"' in run and '*" && python -m pytest -q")' in run

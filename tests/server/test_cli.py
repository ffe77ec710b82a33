"""The `assay` command line, run through Flask's CLI runner on a temporary database."""
from __future__ import annotations

import json

from tests.data import SMS_PATH


def test_init_db_is_idempotent(runner):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0 and "up to date" in result.output


def test_create_import_export_round_trip(runner, tmp_path, app):
    result = runner.invoke(args=["create-project", "sms", "--labels", "ham,spam", "--strategy", "margin"])
    assert result.exit_code == 0, result.output
    pid = int(result.output.strip())
    data = tmp_path / "items.csv"
    data.write_text("id,text,label\n1,free prize now,spam\n2,see you at lunch,ham\n3,call me,\n")
    result = runner.invoke(args=["import", "sms", str(data), "--label-column", "label"])
    assert result.exit_code == 0, result.output
    assert "imported 3, skipped 0" in result.output
    result = runner.invoke(args=["import", str(pid), str(data)])
    assert "imported 0, skipped 3" in result.output
    out = tmp_path / "labels.jsonl"
    result = runner.invoke(args=["export", "sms", "--format", "jsonl", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote 2 rows to {out}" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["id"]: r["label"] for r in rows} == {"1": "spam", "2": "ham"}
    result = runner.invoke(args=["export", "sms", "--format", "csv"])
    assert result.stdout.splitlines()[0] == "id,item_id,data.text,label,annotator,timestamp"
    assert len(result.stdout.splitlines()) == 3 and "wrote 2 rows to standard output" in result.stderr


def test_export_of_nothing_labeled_says_so(runner, tmp_path):
    runner.invoke(args=["create-project", "empty", "--labels", "a,b"])
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"labels.{fmt}"
        result = runner.invoke(args=["export", "empty", "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert f"wrote 0 rows to {out} (nothing is labeled yet)" in result.output


def test_import_of_the_tab_separated_sms_file(runner):
    runner.invoke(args=["create-project", "sms", "--labels", "ham,spam"])
    result = runner.invoke(args=["import", "sms", SMS_PATH, "--text-column", "SMS", "--label-column", "Label"])
    assert result.exit_code == 0, result.output
    assert "imported 5574" in result.output


def test_import_reads_labels_only_with_label_column(runner, tmp_path, app):
    runner.invoke(args=["create-project", "news", "--labels", "world,sports"])
    data = tmp_path / "ag.csv"
    data.write_text('label,title\n2,"Wall St. Bears Claw Back"\n3,"Carlyle Looks Toward"\n')
    result = runner.invoke(args=["import", "news", str(data), "--text-column", "title"])
    assert result.exit_code == 0 and "imported 2" in result.output, result.output
    result = runner.invoke(args=["import", "news", str(data), "--text-column", "title", "--label-column", "label",
                                 "--id-column", "none"])
    assert result.exit_code != 0 and "unknown label '2'" in result.output
    assert "--label-column names it" in result.output
    assert app.test_client().get("/api/projects/1/stats").json["labeled"] == 0


def test_cli_errors_are_messages_not_tracebacks(runner, tmp_path):
    result = runner.invoke(args=["import", "nope", SMS_PATH])
    assert result.exit_code != 0 and "no project 'nope'" in result.output
    runner.invoke(args=["create-project", "p", "--labels", "a,b"])
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,x\n")
    result = runner.invoke(args=["import", "p", str(bad)])
    assert result.exit_code != 0 and "no column 'text'" in result.output
    assert "set --text-column to the column that holds the text" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(args=["create-project", "q", "--labels", "a,b", "--strategy", "nope"])
    assert result.exit_code != 0 and "unknown strategy" in result.output


def test_cli_names_a_binary_file_instead_of_calling_it_bad_utf8(runner, tmp_path):
    import zipfile

    runner.invoke(args=["create-project", "p", "--labels", "a,b"])
    book = tmp_path / "data.xlsx"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    result = runner.invoke(args=["import", "p", str(book)])
    assert result.exit_code != 0 and "this is an Excel workbook (.xlsx)" in result.output, result.output
    assert "UTF-8" not in result.output and "Traceback" not in result.output


def test_serve_refuses_a_public_address_without_auth(runner):
    result = runner.invoke(args=["serve", "--host", "0.0.0.0", "--port", "5999"])
    assert result.exit_code != 0 and "refusing" in result.output


def test_demo_creates_the_sms_project(runner, app):
    result = runner.invoke(args=["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "5574 SMS messages" in result.output
    client = app.test_client()
    projects = client.get("/api/projects").json
    assert projects[0]["name"] == "sms-spam-demo" and projects[0]["items"] == 5574
    stats = client.get(f"/api/projects/{projects[0]['id']}/stats").json
    assert stats["history"][0]["status"] == "cold_start"
    queue = client.get(f"/api/projects/{projects[0]['id']}/queue?n=10").json
    assert len(queue) == 10
    assert all(set(item["data"]) == {"text"} for item in queue)  # the gold labels are not shown


def test_strategies_lists_every_registered_name(runner):
    from assay import strategies

    result = runner.invoke(args=["strategies"])
    for name in strategies.available():
        assert name in result.output


def _taken_port():
    """A socket listening on a free loopback port, as another program would."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_serve_on_a_taken_port_says_so_in_one_line(runner):
    with _taken_port() as sock:
        port = sock.getsockname()[1]
        result = runner.invoke(args=["serve", "--port", str(port)])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "serving on" not in result.output
    assert f"port {port} on 127.0.0.1 is taken" in result.output and "try --port " in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_demo_on_a_taken_port_stops_before_importing(runner, app):
    with _taken_port() as sock:
        port = sock.getsockname()[1]
        result = runner.invoke(args=["demo", "--port", str(port)])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert f"port {port} on 127.0.0.1 is taken" in result.output
    assert app.test_client().get("/api/projects").json == []

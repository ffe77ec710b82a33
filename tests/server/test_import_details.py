"""What an import says about the rows it did not take: repeated ids, another separator, unknown labels among
many, invalid rows (left out and listed with --skip-invalid / skip_invalid=true)."""
from __future__ import annotations


def _project(runner, name="p", labels="ham,spam"):
    result = runner.invoke(args=["create-project", name, "--labels", labels])
    assert result.exit_code == 0, result.output
    return int(result.output.strip())


def test_a_repeated_id_inside_the_file_is_named_not_called_already_present(runner, tmp_path):
    _project(runner)
    data = tmp_path / "r.csv"
    data.write_text("id,text\na1,hello\na2,world\na1,hello again\n")
    result = runner.invoke(args=["import", "p", str(data)])
    assert result.exit_code == 0, result.output
    assert "imported 2, skipped 0 already present, 1 repeating an id of an earlier row " \
           "(row 3 repeats row 1's id 'a1')" in result.output
    # A re-import: every row is already present, and the repeat is still named as one.
    result = runner.invoke(args=["import", "p", str(data)])
    assert "imported 0, skipped 2 already present, 1 repeating" in result.output


def test_the_api_lists_repeated_ids(client, make_project):
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items", json=[{"id": "x", "text": "a"}, {"id": "x", "text": "b"}])
    assert r.status_code == 200
    assert r.json == {"imported": 1, "skipped": 1, "repeated": [{"row": 2, "id": "x", "first_row": 1}]}
    # Nothing to say: the answer keeps its two fields.
    r = client.post(f"/api/projects/{pid}/items", json=[{"id": "y", "text": "c"}])
    assert r.json == {"imported": 1, "skipped": 0}


def test_a_semicolon_separated_file_is_read_as_such(runner, tmp_path):
    _project(runner)
    data = tmp_path / "s.csv"
    data.write_text("id;text\n1;hallo welt\n2;guten tag, wie geht's\n")
    result = runner.invoke(args=["import", "p", str(data)])
    assert result.exit_code == 0, result.output
    assert "imported 2" in result.output
    export = runner.invoke(args=["export", "p", "--format", "csv"])  # nothing labeled: the import is what counts
    assert export.exit_code == 0


def test_another_separator_is_named(runner, tmp_path):
    _project(runner)
    data = tmp_path / "t.csv"
    data.write_text("id|text\n1|x\n")
    result = runner.invoke(args=["import", "p", str(data)])
    assert result.exit_code != 0
    assert "the file looks pipe-separated" in result.output


def test_an_unknown_label_among_many_names_the_row_and_label_not_every_label(runner, tmp_path):
    labels = [f"intent_{i:03d}" for i in range(150)]
    _project(runner, labels=",".join(labels))
    data = tmp_path / "l.csv"
    rows = [f"{i},text {i},{labels[i % 150]}" for i in range(30)]
    rows[11] = "11,text 11,book_fligth"
    data.write_text("id,text,intent\n" + "\n".join(rows) + "\n")
    result = runner.invoke(args=["import", "p", str(data), "--label-column", "intent"])
    assert result.exit_code != 0
    message = result.output
    assert "row 12: unknown label 'book_fligth'" in message
    assert "not one of the project's 150 labels (intent_000, intent_001" in message
    assert "intent_149" not in message  # not all 150
    assert "add the label to the project's labels first" in message
    assert "--skip-invalid" in message
    result = runner.invoke(args=["import", "p", str(data), "--label-column", "intent", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "imported 29" in result.output and "left out 1 invalid row (row 12: unknown label 'book_fligth'" \
        in result.output


def test_an_empty_first_text_offers_to_skip_and_skipping_reports_the_rows(runner, tmp_path):
    _project(runner)
    data = tmp_path / "e.csv"
    data.write_text("id,text\n1,\n" + "".join(f"{i},message {i}\n" for i in range(2, 2001)) + "2001,  \n")
    result = runner.invoke(args=["import", "p", str(data)])
    assert result.exit_code != 0
    assert ("row 1: 'text' is missing or empty (1 more row cannot be imported either: row 2001). Nothing was "
            "imported: fix the file, or import with --skip-invalid") in result.output
    result = runner.invoke(args=["import", "p", str(data), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert ("imported 1999, skipped 0 already present, left out 2 invalid rows (row 1: 'text' is missing or "
            "empty; row 2001: 'text' is missing or empty)") in result.output


def test_skip_invalid_over_http(client, make_project):
    pid = make_project()
    items = [{"id": "a", "text": ""}, {"id": "b", "text": "fine"}]
    r = client.post(f"/api/projects/{pid}/items", json=items)
    assert r.status_code == 400 and "skip_invalid=true" in r.json["error"]
    r = client.post(f"/api/projects/{pid}/items?skip_invalid=true", json=items)
    assert r.status_code == 200
    assert r.json == {"imported": 1, "skipped": 0, "invalid": [{"row": 1, "error": "row 1: 'text' is missing or empty"}]}


def test_one_row_is_one_row(runner, tmp_path):
    _project(runner)
    data = tmp_path / "one.csv"
    data.write_text("id,text\n1,alone\n")
    result = runner.invoke(args=["import", "p", str(data)])
    assert "importing 1 row" in result.output and "importing 1 rows" not in result.output


# -- small things of the same first hour -----------------------------------------------------------


def test_the_project_list_shows_ten_chips_and_the_count(client, make_project):
    labels = [f"intent_{i:03d}" for i in range(150)]
    make_project("intents", labels)
    page = client.get("/").get_data(as_text=True)
    assert page.count('class="chip"') == 10
    assert "intent_009" in page and "intent_010" not in page
    assert "150 labels" in page


def test_exports_with_provenance_or_every_answer_download_under_their_own_names(client, make_project):
    pid = make_project("named")
    names = set()
    for query in ("", "&provenance=1", "&annotations=all", "&annotations=all&provenance=1"):
        # Read and closed inside the loop: a streamed body left open is finished later, under another
        # request's context, and Flask's teardown then pops the wrong one (a warning in the run's summary).
        with client.get(f"/api/projects/{pid}/export?format=csv{query}") as r:
            assert r.status_code == 200 and r.data is not None
            names.add(r.headers["Content-Disposition"].split('filename="')[1].split('"')[0])
    assert names == {"named-labels.csv", "named-labels-provenance.csv", "named-labels-all-answers.csv",
                     "named-labels-all-answers-provenance.csv"}


def test_a_model_without_predict_proba_is_told_how_to_get_one():
    import pytest

    from assay.models import ModelError, make_model

    with pytest.raises(ModelError) as refused:
        make_model("sklearn.svm:LinearSVC")
    message = str(refused.value)
    assert "any scikit-learn classifier has both" not in message  # LinearSVC is one, and has no predict_proba
    assert "CalibratedClassifierCV(LinearSVC())" in message and "SVC(probability=True)" in message


def test_a_refused_delete_is_reported_with_its_count(client, make_project):
    pid = make_project("del")
    client.post(f"/api/projects/{pid}/items", json=[{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    item = client.get(f"/api/projects/{pid}/queue?n=1").json[0]
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": "ham"})
    r = client.post(f"/api/projects/{pid}/items/delete", json={"ids": [item["id"]]})
    assert r.status_code == 409 and r.json["details"] == {"labeled": 1}  # the page words it itself

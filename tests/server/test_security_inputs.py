"""Hostile inputs from the adversarial review (issue 9): each answers a 4xx that says what was wrong."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

from tests import sql


def _png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    raw = bytearray(buf.getvalue())
    # IHDR starts at byte 8: length (4), type (4), width (4), height (4), ...; its CRC follows the 13 data bytes.
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


BOMB = _png(20000, 20000)


def _image_project(make_project, name="pics"):
    return make_project(name, labels=["a", "b"], item_type="image")


# -- decompression bombs ------------------------------------------------------

def test_oversized_png_upload_is_refused_naming_the_file(client, make_project):
    pid = _image_project(make_project)
    r = client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(BOMB), "huge.png")},
                    content_type="multipart/form-data")
    assert r.status_code == 413 and "huge.png" in r.json["error"] and "pixels" in r.json["error"], r.json
    assert client.get(f"/api/projects/{pid}/stats").json["unlabeled"] == 0


def test_oversized_png_in_a_zip_is_refused_naming_the_entry(client, make_project):
    import zipfile

    pid = _image_project(make_project)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a/fine.png", _png(1, 1))
        archive.writestr("b/bomb.png", BOMB)
    r = client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(buf.getvalue()), "pics.zip")},
                    content_type="multipart/form-data")
    assert r.status_code == 413 and "b/bomb.png" in r.json["error"], r.json


def test_featurizer_treats_an_oversized_image_as_unreadable(tmp_path):
    from PIL import Image

    from assay.features.image import ImageFeaturizer

    Image.new("L", (4, 4), 200).save(tmp_path / "ok.png")
    (tmp_path / "bomb.png").write_bytes(BOMB)
    items = [{"image": "ok.png"}, {"image": "bomb.png"}]
    with pytest.warns(RuntimeWarning, match="bomb.png"):
        X = ImageFeaturizer(size=(4, 4), root=str(tmp_path)).fit(items).transform(items)
    assert X.shape == (2, 16) and np.all(np.isfinite(X))


# -- JSON nested 100,000 deep ---------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_annotation_body_is_a_400(client, make_project):
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/annotations", data='{"item_id": 1, "label": ' + DEEP + "}",
                    content_type="application/json")
    assert r.status_code == 400 and "nested too deeply" in r.json["error"], r.json


@pytest.mark.parametrize("how", ["json body", "jsonl file", "json file", "jsonl body"])
def test_deeply_nested_import_is_a_400(client, make_project, how):
    pid = make_project()
    url = f"/api/projects/{pid}/items"
    if how == "json body":
        r = client.post(url, data='[{"text": "a", "x": ' + DEEP + "}]", content_type="application/json")
    elif how == "jsonl body":
        r = client.post(url, data='{"text": "a"}\n{"text": "b", "x": ' + DEEP + "}\n",
                        content_type="application/x-ndjson")
    else:
        name, body = ("a.jsonl", '{"text": "a"}\n{"text": "b", "x": ' + DEEP + "}\n") if how == "jsonl file" \
            else ("a.json", '[{"text": "a", "x": ' + DEEP + "}]")
        r = client.post(url, data={"file": (io.BytesIO(body.encode()), name)}, content_type="multipart/form-data")
    assert r.status_code == 400 and "nested too deeply" in r.json["error"], r.json
    assert client.get(f"/api/projects/{pid}/stats").json["unlabeled"] == 0



# -- image paths outside the import's folder or the media store ----------------

@pytest.mark.parametrize("path", ["/etc/passwd", "../../secret_key", "../project-2/x.png"])
def test_json_import_refuses_image_paths_outside_the_media_store(app, client, make_project, path):
    pid = _image_project(make_project)
    r = client.post(f"/api/projects/{pid}/items", json=[{"image": path}])
    assert r.status_code == 400 and "media store" in r.json["error"] and "upload" in r.json["error"], r.json
    r = client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(f"image\n{path}\n".encode()), "p.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 400 and "media store" in r.json["error"], r.json
    assert client.get(f"/api/projects/{pid}/stats").json["unlabeled"] == 0


def test_json_import_may_name_images_already_uploaded(client, make_project):
    pid = _image_project(make_project)
    client.post(f"/api/projects/{pid}/items", data={"file": (io.BytesIO(_png(2, 2)), "a.png")},
                content_type="multipart/form-data")
    stored = client.get(f"/api/projects/{pid}/queue?n=1").json[0]["data"]["image"]
    r = client.post(f"/api/projects/{pid}/items", json=[{"id": "again", "image": stored}])
    assert r.status_code == 200 and r.json["imported"] == 1, r.json


def test_cli_csv_of_paths_must_stay_in_the_csv_folder(app, runner, make_project, tmp_path):
    _image_project(make_project)
    (tmp_path / "outside.png").write_bytes(_png(2, 2))
    folder = tmp_path / "list"
    folder.mkdir()
    (folder / "inside.png").write_bytes(_png(2, 2))
    for bad in ("../outside.png", str(tmp_path / "outside.png")):
        (folder / "list.csv").write_text(f"image\ninside.png\n{bad}\n")
        result = runner.invoke(args=["import", "pics", str(folder / "list.csv")])
        assert result.exit_code != 0 and "outside" in result.output and "CSV's folder" in result.output, result.output
    (folder / "list.csv").write_text("image\ninside.png\n")
    assert "imported 1" in runner.invoke(args=["import", "pics", str(folder / "list.csv")]).output


def test_cli_folder_import_refuses_links_out_of_the_folder(app, runner, make_project, tmp_path):
    _image_project(make_project)
    (tmp_path / "secret.png").write_bytes(_png(2, 2))
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "ok.png").write_bytes(_png(3, 3))
    (folder / "sneaky.png").symlink_to(tmp_path / "secret.png")
    result = runner.invoke(args=["import", "pics", str(folder)])
    assert result.exit_code != 0 and "sneaky.png" in result.output and "outside" in result.output, result.output


def test_featurizer_with_a_root_reads_nothing_outside_it(tmp_path):
    from PIL import Image

    from assay.features.image import ImageFeaturizer

    root = tmp_path / "media"
    root.mkdir()
    Image.new("L", (4, 4), 10).save(root / "ok.png")
    Image.new("L", (4, 4), 250).save(tmp_path / "private.png")
    items = [{"image": "ok.png"}, {"image": str(tmp_path / "private.png")}, {"image": "../private.png"}]
    with pytest.warns(RuntimeWarning, match="2 of 3 images could not be read"):
        ImageFeaturizer(size=(4, 4), root=str(root)).fit(items)


# -- request body limits ----------------------------------------------------------

def test_a_20_mb_label_is_refused_with_the_json_limit(client, make_project):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=[{"text": "a"}])
    body = '{"item_id": 1, "label": "' + "x" * (20 * 2**20) + '"}'
    r = client.post(f"/api/projects/{pid}/annotations", data=body, content_type="application/json")
    assert r.status_code == 413 and "MAX_JSON_BYTES" in r.json["error"] and str(2**20) in r.json["error"], r.json
    r = client.post("/api/projects", data='{"name": "' + "n" * (2 * 2**20) + '", "labels": ["a", "b"]}',
                    content_type="application/json")
    assert r.status_code == 413


def test_imports_keep_the_large_limit_and_stream_the_body(client, make_project):
    pid = make_project()
    n = 40_000  # about 1.7 MB: beyond the JSON limit, well within the upload one
    body = "id,text\n" + "".join(f"{i},message number {i} with some words\n" for i in range(n))
    assert len(body) > 2**20
    r = client.post(f"/api/projects/{pid}/items", data=body.encode(), content_type="text/csv")
    assert r.status_code == 200 and r.json["imported"] == n, r.json
    payload = [{"id": f"j{i}", "text": f"json item {i} " + "w" * 30} for i in range(30_000)]
    r = client.post(f"/api/projects/{pid}/items", json=payload)
    assert r.status_code == 200 and r.json["imported"] == 30_000, r.json


def test_an_import_beyond_the_upload_limit_names_its_setting(tmp_path):
    from assay import close_app, create_app

    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "a.sqlite"), "MAX_CONTENT_LENGTH": 50_000})
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"name": "p", "labels": ["a", "b"]}).json["id"]
        r = client.post(f"/api/projects/{pid}/items", data=b"text\n" + b"hello\n" * 20_000, content_type="text/csv")
        assert r.status_code == 413 and "ASSAY_MAX_CONTENT_LENGTH" in r.json["error"], r.json
    finally:
        close_app(app)


# -- large imports hold the writer one chunk at a time -------------------------------

def test_a_label_posted_during_a_large_import_does_not_wait_for_it(app, client, make_project, monkeypatch):
    import threading
    import time

    from assay import store

    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=[{"id": "first", "text": "label me"}])
    item_id = client.get(f"/api/projects/{pid}/queue?n=1").json[0]["id"]
    inserting, timings = threading.Event(), {}
    real_insert = store.insert_items

    def timed_insert(*args, **kwargs):
        inserting.set()
        t0 = time.perf_counter()
        try:
            return real_insert(*args, **kwargs)
        finally:
            timings["insert"] = time.perf_counter() - t0

    monkeypatch.setattr(store, "insert_items", timed_insert)
    body = "id,text\n" + "".join(f"{i},generated message {i} about item {i % 97}\n" for i in range(100_000))
    result = {}
    importer = threading.Thread(target=lambda: result.update(
        r=app.test_client().post(f"/api/projects/{pid}/items", data=body.encode(), content_type="text/csv")))
    importer.start()
    assert inserting.wait(120)
    time.sleep(0.05)
    t0 = time.perf_counter()
    r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": item_id, "label": "ham"})
    label_seconds = time.perf_counter() - t0
    importer.join(300)
    assert r.status_code == 201 and result["r"].json == {"imported": 100_000, "skipped": 0}
    assert label_seconds < 0.2 * timings["insert"], (label_seconds, timings)


def test_an_import_failing_half_way_leaves_nothing(app, make_project):
    from assay import store

    pid = make_project()
    db = app.extensions["assay.db"]
    rows = [(f"r{i}", {"text": f"t{i}"}, "ham" if i % 2 else None) for i in range(50)]
    rows[35] = ("bad", {"text": {1, 2}}, None)  # not JSON: the fourth chunk fails after three committed
    with pytest.raises(TypeError):
        store.insert_items(db, pid, rows, chunk=10)
    assert sql.count_items(db, pid) == 0
    assert store.insert_items(db, pid, rows[:30], chunk=10) == (30, 0)
    assert store.insert_items(db, pid, rows[:40:2] + rows[:5], chunk=7) == (5, 20)


def test_an_import_whose_process_died_is_undone_at_the_next_start(tmp_path):
    import subprocess
    import sys
    import textwrap

    from assay import close_app, create_app, services, store

    db_path = str(tmp_path / "assay.sqlite")
    script = textwrap.dedent(f"""
        import os
        from assay import create_app, store
        from assay.domain import projects
        app = create_app({{"TESTING": True, "DATABASE": {db_path!r}}})
        db = app.extensions["assay.db"]
        pid = projects.create(db, {{"name": "p", "labels": ["a", "b"]}})
        store.insert_items(db, pid, [("keep", {{"text": "earlier import"}}, None)])
        done = []
        def die_after_three_chunks(n):
            done.append(n)
            if len(done) == 3:
                os._exit(9)  # no cleanup, no finally: like a kill -9 or a power cut
        store.insert_items(db, pid, [(str(i), {{"text": str(i)}}, "a") for i in range(100)],
                           progress=die_after_three_chunks, chunk=10)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(__import__("pathlib").Path(__file__).parents[2]),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    app = create_app({"TESTING": True, "DATABASE": db_path})
    try:
        services.open_database(app)  # what every `assay` command does at its start
        db = app.extensions["assay.db"]
        assert sql.count_items(db, 1) == 1
        assert app.test_client().get("/api/projects/1/stats").json["labeled"] == 0
    finally:
        close_app(app)


def test_only_this_machine_s_dead_imports_are_undone(app):
    """A process id means something only on its own machine: with servers on several machines sharing one
    database, a starting server must not take another machine's running import for dead."""
    import socket

    from assay import store
    from assay.domain import projects

    db = app.extensions["assay.db"]
    pid = projects.create(db, {"name": "hosts", "labels": ["a", "b"]})
    dead_pid = 2 ** 22 + 12345  # above Linux's pid_max default: no such process here
    with db.write() as tx:
        for host in ("elsewhere.example", socket.gethostname(), None):
            import_id = tx.execute("INSERT INTO imports (project_id, pid, host) VALUES (?, ?, ?)",
                                   (pid, dead_pid, host)).lastrowid
            tx.execute("INSERT INTO items (project_id, external_id, data, shuffle, import_id) VALUES (?, ?, ?, 0, ?)",
                       (pid, f"from-{host}", '{"text": "x"}', import_id))
    assert store.discard_dead_imports(db) == 2  # this machine's and the host-less one from before migration 0013
    left = [r[0] for r in db.reader.execute("SELECT external_id FROM items WHERE project_id = ?", (pid,)).fetchall()]
    assert left == ["from-elsewhere.example"]


@pytest.mark.parametrize("payload", [
    [{"id": "a", "text": "fine"}, {"id": "b", "text": "nul \x00 inside"}],
    [{"id": "a", "text": "fine"}, {"id": "b", "text": "fine", "meta": {"note": "x\x00"}}],
    [{"id": "a", "text": "fine"}, {"id": "b\x00", "text": "fine"}],
])
def test_a_nul_character_is_refused_with_its_row_and_nothing_is_imported(client, make_project, payload):
    """PostgreSQL cannot store U+0000 in text or JSON; both engines refuse it, naming the row, before writing."""
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items", json=payload)
    assert r.status_code == 400 and "row 2 holds a NUL character" in r.json["error"], r.json
    assert client.get(f"/api/projects/{pid}/stats").json["items"] == 0


# -- issue 26: item_type changes only while a project has no items ----------------------------------------

def test_a_text_project_with_items_cannot_become_an_image_project(app, client, make_project):
    """The image-path check runs at import; switching a text project to images skipped it, and an item's
    ``image`` of ../../../api/projects/1/queue became a request from the annotator's browser."""
    pid = make_project("texts", labels=["a", "b"])
    hostile = [{"text": "hi", "image": "../../../api/projects/1/queue"}, {"text": "ho", "image": "/etc/passwd"}]
    assert client.post(f"/api/projects/{pid}/items", json=hostile).status_code == 200
    r = client.patch(f"/api/projects/{pid}", json={"item_type": "image"})
    assert r.status_code == 409 and "new image project" in r.json["error"], r.json
    assert client.get(f"/api/projects/{pid}").json["item_type"] == "text"
    assert client.patch(f"/api/projects/{pid}", json={"item_type": "text", "batch_size": 7}).status_code == 200


def test_an_empty_project_may_change_its_item_type(client, make_project):
    pid = make_project("empty", labels=["a", "b"])
    r = client.patch(f"/api/projects/{pid}", json={"item_type": "image"})
    assert r.status_code == 200 and r.json["item_type"] == "image"


def test_an_import_checked_as_text_is_refused_if_the_type_changed_before_it_began(app, make_project):
    from assay import store
    from assay.errors import Conflict

    db = app.extensions["assay.db"]
    pid = make_project("racing", labels=["a", "b"])
    rows = [(None, {"text": "x", "image": "../../../api/projects/1/queue"}, None)]
    store.update_project(db, pid, {"item_type": "image"})  # while the rows were being checked as text
    with pytest.raises(Conflict, match="import it again"):
        store.insert_items(db, pid, rows, item_type="text")
    assert store.counts(db, pid)["total"] == 0


# -- issue 26: a built-in model's parameters are bounded ------------------------------------------------

@pytest.mark.parametrize("model, params, word", [
    ("mlp", {"max_epochs": 10**9}, "max_epochs"), ("mlp", {"patience": 10**9}, "patience"),
    ("mlp", {"hidden": [200000, 200000]}, "hidden"), ("mlp", {"hidden": [8] * 50}, "hidden"),
    ("mlp", {"batch_size": 0}, "batch_size"), ("mlp", {"lr": 1e308 * 10}, "lr"),
    ("logreg", {"max_iter": 10**9}, "max_iter"), ("logreg", {"max_exact_hessian": 10**6}, "max_exact_hessian"),
    ("ensemble", {"n_members": 10**6}, "n_members"), ("ensemble", {"estimator": "sklearn.svm:SVC"}, "estimator"),
    ("logreg", {"tol": True}, "tol")])
def test_a_built_in_models_parameters_are_bounded(client, model, params, word):
    body = {"name": f"bounded-{model}", "labels": ["a", "b"], "model": model, "strategy": "margin"}
    r = client.post("/api/projects", json={**body, "model_params": params})
    assert r.status_code == 400 and word in r.json["error"] and "must be" in r.json["error"], r.json
    pid = client.post("/api/projects", json=body).json["id"]
    r = client.patch(f"/api/projects/{pid}", json={"model_params": params})
    assert r.status_code == 400 and word in r.json["error"], r.json
    assert client.get(f"/api/projects/{pid}").json.get("model_params", {}) == {}


def test_parameters_within_the_bounds_are_taken(client):
    r = client.post("/api/projects", json={"name": "fine", "labels": ["a", "b"], "model": "mlp", "strategy": "margin",
                                           "model_params": {"hidden": [64, 32], "max_epochs": 50, "patience": 5,
                                                            "dropout": 0.2, "refit": False}})
    assert r.status_code == 201, r.json

"""Image and tabular projects end to end: import, label 30, retrain, export."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.data import adult_lines, load_adult

pytestmark = pytest.mark.slow


def _write_digits(folder, n=150):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    truth = {}
    for i in range(n):
        img = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8), mode="L")
        name = f"digit_{i:04d}.png"
        img.save(folder / name)
        truth[name] = str(digits.target[i])
    return truth


def _label_n(client, pid, n, answer):
    done = 0
    while done < n:
        items = client.get(f"/api/projects/{pid}/queue?n=5").json
        assert items
        for item in items[: n - done]:
            r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": answer(item)})
            assert r.status_code == 201
            done += 1


def test_image_project_from_a_folder_of_digits(app, client, runner, make_project, tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    truth = _write_digits(folder)
    pid = make_project("digits", labels=[str(d) for d in range(10)], item_type="image", strategy="entropy",
                       retrain_every=30, batch_size=10)
    result = runner.invoke(args=["import", "digits", str(folder)])
    assert result.exit_code == 0 and "imported 150" in result.output, result.output
    service = app.extensions["assay.retrain"]
    assert service.wait_idle(120)
    _label_n(client, pid, 30, lambda item: truth[item["data"]["name"]])
    assert service.wait_idle(120)
    stats = client.get(f"/api/projects/{pid}/stats").json
    last = stats["history"][-1]
    assert last["status"] == "ok" and last["n_labels"] == 30 and last["accuracy"] > 0.3, stats["history"]
    item = client.get(f"/api/projects/{pid}/queue?n=1").json[0]
    with client.get(f"/projects/{pid}/media/{item['data']['image']}") as media:  # closes the file it sends
        assert media.status_code == 200
    rows = [json.loads(x) for x in client.get(f"/api/projects/{pid}/export").data.decode().splitlines()]
    assert len(rows) == 30 and all(r["label"] == truth[r["data"]["name"]] for r in rows)


def test_image_project_from_a_csv_of_paths(app, runner, make_project, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    truth = _write_digits(folder, 20)
    listing = tmp_path / "list.csv"
    with open(listing, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "label"])
        for name, label in truth.items():
            writer.writerow([f"imgs/{name}", label if int(name[6:10]) < 5 else ""])
    make_project("paths", labels=[str(d) for d in range(10)], item_type="image")
    result = runner.invoke(args=["import", "paths", str(listing), "--label-column", "label"])
    assert result.exit_code == 0 and "imported 20" in result.output, result.output
    client = app.test_client()
    assert client.get("/api/projects/1/stats").json["labeled"] == 5


def test_tabular_project_from_adult(app, client, make_project, tmp_path):
    small = tmp_path / "adult.csv"
    small.write_text("".join(adult_lines(300)))
    pid = make_project("adult", labels=["<=50K", ">50K"], item_type="tabular", strategy="margin", retrain_every=30)
    with open(small, "rb") as fh:
        r = client.post(f"/api/projects/{pid}/items?label_column=income&id_column=none",
                        data={"file": (fh, "adult.csv")}, content_type="multipart/form-data")
    assert r.status_code == 200 and r.json == {"imported": 300, "skipped": 0}, r.json
    truth = {}
    with open(small, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, skipinitialspace=True):
            truth[(row["age"], row["fnlwgt"])] = row["income"]
    service = app.extensions["assay.retrain"]
    assert service.wait_idle(120)
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["labeled"] == 300 and stats["history"][-1]["status"] == "ok"
    assert stats["history"][-1]["accuracy"] > 0.7
    rows = [json.loads(x) for x in client.get(f"/api/projects/{pid}/export?format=jsonl").data.decode().splitlines()]
    assert len(rows) == 300
    assert set(rows[0]["data"]) >= {"age", "workclass", "education", "hours-per-week"}
    assert "income" not in rows[0]["data"]
    assert all(r["label"] == truth[(r["data"]["age"], r["data"]["fnlwgt"])] for r in rows)


def test_tabular_labels_given_in_the_browser_flow(app, client, make_project, tmp_path):
    rows = load_adult(200)
    pid = make_project("adult2", labels=["<=50K", ">50K"], item_type="tabular", strategy="power_entropy",
                       retrain_every=30)
    payload = [{k: v for k, v in row.items() if k != "income"} for row in rows]
    assert client.post(f"/api/projects/{pid}/items", json=payload).json["imported"] == 200
    truth = {(r["age"], r["fnlwgt"]): r["income"] for r in rows}
    service = app.extensions["assay.retrain"]
    assert service.wait_idle(120)
    _label_n(client, pid, 30, lambda item: truth[(item["data"]["age"], item["data"]["fnlwgt"])])
    assert service.wait_idle(120)
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["labeled"] == 30 and stats["history"][-1]["status"] in ("ok", "cold_start")
    csv_text = client.get(f"/api/projects/{pid}/export?format=csv").data.decode()
    header = csv_text.splitlines()[0].split(",")
    assert header[:3] == ["id", "item_id", "data.age"] and header[-3:] == ["label", "annotator", "timestamp"]

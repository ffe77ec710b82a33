"""Plug-in models in the running server: a scikit-learn pipeline works; broken models are harmless."""
from __future__ import annotations

import pytest

from tests.data import load_sms

pytestmark = pytest.mark.slow



@pytest.fixture(autouse=True)
def _registered(app):
    # Over HTTP only import paths the operator registered may load (ASSAY_MODELS).
    app.config["MODELS"] = ",".join(f"tests.plugin_models:{name}" for name in ("pca_logreg", "raising", "sleepy",
                                                                               "nan_model"))

def _seeded_project(client, make_project, name, model, n_items=120, **fields):
    """A project with SMS items, 30 of them imported with their labels (15 spam, 15 ham)."""
    pid = make_project(name, model=model, strategy="margin", batch_size=5, retrain_every=5, **fields)
    rows = load_sms(600, distinct=True)  # no copies of a seed's text, which its label would reach
    spam = [i for i, r in enumerate(rows) if r["label"] == "spam"][:15]
    ham = [i for i, r in enumerate(rows) if r["label"] == "ham"][:15]
    chosen = spam + ham + [i for i in range(n_items) if i not in spam and i not in ham][: n_items - 30]
    payload = [{"id": str(i), "text": rows[i]["text"], **({"label": rows[i]["label"]} if i in spam + ham else {})}
               for i in chosen]
    assert client.post(f"/api/projects/{pid}/items?label_column=label", json=payload).json["imported"] == n_items
    return pid


def _label_some(client, pid, n):
    for item in client.get(f"/api/projects/{pid}/queue?n={n}").json:
        assert client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": "ham"}).status_code == 201


def test_sklearn_pipeline_by_import_path_retrains(app, client, make_project):
    pid = _seeded_project(client, make_project, "pipe", "tests.plugin_models:pca_logreg")
    assert app.extensions["assay.retrain"].wait_idle(120)
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["history"][-1]["status"] == "ok", stats["history"]
    assert stats["history"][-1]["n_labels"] == 30 and stats["history"][-1]["accuracy"] > 0.6
    queue = client.get(f"/api/projects/{pid}/queue?n=5").json
    assert all(i["prediction"] is not None for i in queue)
    assert {i["strategy"] for i in queue} <= {"margin", "audit"} and "margin" in {i["strategy"] for i in queue}


def test_a_model_that_raises_is_recorded_and_the_project_keeps_serving(app, client, make_project):
    pid = _seeded_project(client, make_project, "raiser", "tests.plugin_models:raising")
    service = app.extensions["assay.retrain"]
    assert service.wait_idle(120)
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["history"][-1]["status"] == "failed"
    assert "always fails to fit" in stats["last_error"]
    assert len(client.get(f"/api/projects/{pid}/queue?n=5").json) == 5  # annotators are not stalled
    _label_some(client, pid, 5)  # retrain_every later, the loop tries again
    assert service.wait_idle(120)
    history = client.get(f"/api/projects/{pid}/stats").json["history"]
    assert [v["status"] for v in history].count("failed") == 2
    page = client.get(f"/projects/{pid}")
    assert b"always fails to fit" in page.data


def test_a_model_past_the_timeout_is_stopped_and_a_good_model_works_after(tmp_path, make_project):
    from assay import close_app, create_app

    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "t.sqlite"), "RETRAIN_TIMEOUT": 8.0,
                      "MODELS": "tests.plugin_models:sleepy"})
    client = app.test_client()
    try:
        r = client.post("/api/projects", json={"name": "sleepy", "labels": ["ham", "spam"], "strategy": "margin",
                                               "model": "tests.plugin_models:sleepy", "batch_size": 5})
        pid = r.json["id"]
        rows = load_sms(200)
        payload = [{"id": str(i), "text": r["text"], "label": r["label"]} for i, r in enumerate(rows[:40])]
        payload += [{"id": str(i), "text": r["text"]} for i, r in enumerate(rows[40:], 40)]
        client.post(f"/api/projects/{pid}/items?label_column=label", json=payload)
        service = app.extensions["assay.retrain"]
        assert service.wait_idle(60)
        stats = client.get(f"/api/projects/{pid}/stats").json
        assert stats["history"][-1]["status"] == "timeout"
        assert "longer than the retrain timeout" in stats["last_error"]
        assert len(client.get(f"/api/projects/{pid}/queue?n=3").json) == 3
        assert client.patch(f"/api/projects/{pid}", json={"model": "logreg"}).status_code == 200
        client.post(f"/api/projects/{pid}/retrain")
        assert service.wait_idle(120)
        assert client.get(f"/api/projects/{pid}/stats").json["history"][-1]["status"] == "ok"
    finally:
        close_app(app)


def test_a_model_returning_nan_is_caught_with_a_clear_message(app, client, make_project):
    pid = _seeded_project(client, make_project, "nan", "tests.plugin_models:nan_model")
    assert app.extensions["assay.retrain"].wait_idle(120)
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["history"][-1]["status"] == "failed" and "NaN" in stats["last_error"]
    assert len(client.get(f"/api/projects/{pid}/queue?n=5").json) == 5

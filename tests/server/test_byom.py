"""The README's bring-your-own-model examples, run through the server's real loop."""
from __future__ import annotations

import pytest

from tests.data import load_sms

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _registered(app):
    # Over HTTP only import paths the operator registered may load (ASSAY_MODELS).
    app.config["MODELS"] = "examples.byom:sklearn_pipeline,examples.byom:torch_mlp"


# Thresholds: well above the 0.5 of chance on 30 balanced labels (a 24-item training fold for the torch net).
@pytest.mark.parametrize("model, strategy, min_accuracy", [("examples.byom:sklearn_pipeline", "margin", 0.8),
                                                           ("examples.byom:torch_mlp", "power_bald", 0.65)])
def test_readme_models_retrain_in_the_server(app, client, model, strategy, min_accuracy):
    r = client.post("/api/projects", json={"name": "byom", "labels": ["ham", "spam"], "model": model,
                                           "strategy": strategy, "batch_size": 5})
    assert r.status_code == 201, r.json
    pid = r.json["id"]
    rows = load_sms(400)
    spam = [i for i, x in enumerate(rows) if x["label"] == "spam"][:15]
    ham = [i for i, x in enumerate(rows) if x["label"] == "ham"][:15]
    payload = [{"id": str(i), "text": x["text"], **({"label": x["label"]} if i in spam + ham else {})}
               for i, x in enumerate(rows)]
    client.post(f"/api/projects/{pid}/items?label_column=label", json=payload)
    assert app.extensions["assay.retrain"].wait_idle(180)
    last = client.get(f"/api/projects/{pid}/stats").json["history"][-1]
    assert last["status"] == "ok", last
    assert last["accuracy"] > min_accuracy
    queue = client.get(f"/api/projects/{pid}/queue?n=5").json
    # 30 labels owe the audit one pick (assay.learning.queueing); the rest are the strategy's.
    assert sorted(i["strategy"] for i in queue) == sorted(["audit"] + [strategy] * 4)
    assert all(i["prediction"] for i in queue)

"""Projects with many labels: the bound on labels, the queue's top guesses, and the annotate page's picker."""
from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest

from assay.domain.settings import MAX_LABELS
from assay.learning.job import TOP_GUESSES, _prediction

CLINC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets", "clinc150_600.csv")


def clinc_intents() -> list[str]:
    with open(CLINC, encoding="utf-8") as fh:
        return sorted({row["intent"] for row in csv.DictReader(fh)})


def _config(client, pid) -> tuple[str, dict]:
    r = client.get(f"/projects/{pid}/annotate")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    return html, json.loads(html.split('id="assay-config">', 1)[1].split("</script>", 1)[0])


def test_a_project_takes_the_150_clinc_intents_and_refuses_more_than_the_bound(client, make_project):
    intents = clinc_intents()
    assert len(intents) == 150
    pid = make_project("clinc", intents)
    assert client.get(f"/api/projects/{pid}").json["labels"] == intents
    r = client.post("/api/projects", json={"name": "huge", "labels": [f"l{i}" for i in range(MAX_LABELS + 1)]})
    assert r.status_code == 400 and f"2 to {MAX_LABELS} labels" in r.json["error"]


def test_single_label_prediction_with_many_classes_keeps_the_top_guesses_not_the_table():
    rng = np.random.default_rng(0)
    classes = [f"intent_{i:03d}" for i in range(150)]
    probs = rng.dirichlet(np.ones(150))
    pred = _prediction(probs, classes, multi_label=False)
    best = np.argsort(-probs)[:TOP_GUESSES]
    assert pred["top"] == [[classes[i], round(float(probs[i]), 4)] for i in best]
    assert pred["label"] == classes[best[0]] and pred["confidence"] == pred["top"][0][1]
    assert "probs" not in pred  # 150 entries per queue row would swamp every pull
    assert len(json.dumps(pred)) < 300
    assert _prediction(probs, classes, multi_label=False, brief=True) == pred


def test_small_projects_keep_their_per_class_table_and_gain_top():
    pred = _prediction([0.2, 0.8], ["ham", "spam"], multi_label=False)
    assert pred == {"label": "spam", "confidence": 0.8, "top": [["spam", 0.8], ["ham", 0.2]],
                    "probs": {"ham": 0.2, "spam": 0.8}}
    assert _prediction([0.2, 0.8], ["ham", "spam"], False, brief=True) == {
        "label": "spam", "confidence": 0.8, "top": [["spam", 0.8], ["ham", 0.2]]}
    # Ties keep the project's order; a NaN never becomes a guess.
    assert _prediction([0.4, 0.4, math.nan], ["a", "b", "c"], False)["top"] == [["a", 0.4], ["b", 0.4]]


def test_multi_label_prediction_with_many_classes_keeps_the_chosen_and_the_top_guesses():
    classes = [f"tag{i}" for i in range(40)]
    probs = np.full(40, 0.01)
    probs[[3, 7, 11, 20, 21, 22, 30]] = [0.9, 0.8, 0.7, 0.6, 0.55, 0.51, 0.3]
    pred = _prediction(probs, classes, multi_label=True)
    assert pred["labels"] == ["tag3", "tag7", "tag11", "tag20", "tag21", "tag22"]  # every label at 0.5 or more
    assert [label for label, _ in pred["top"]] == ["tag3", "tag7", "tag11", "tag20", "tag21"]
    assert set(pred["probs"]) == set(pred["labels"])
    small = _prediction([0.9, 0.2, 0.6], ["a", "b", "c"], multi_label=True)
    assert small == {"labels": ["a", "c"], "probs": {"a": 0.9, "b": 0.2, "c": 0.6},
                     "top": [["a", 0.9], ["c", 0.6], ["b", 0.2]]}


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_annotate_page_of_150_labels_types_to_pick_and_keys_the_suggestions(client, make_project, multi_label):
    pid = make_project("clinc", clinc_intents(), multi_label=multi_label)
    html, config = _config(client, pid)
    assert config["picker"] is True
    assert config["keys"] == [None] * 150  # the number keys pick each item's suggestions, not labels
    assert 'id="picker-input"' in html and 'id="suggestions"' in html
    assert "<kbd>1</kbd>" not in html and "Ctrl+S" in html
    assert html.count('class="label-button"') == 150


def test_ten_labels_keep_the_number_row_and_no_picker(client, make_project):
    pid = make_project("ten", [f"topic{i}" for i in range(10)])
    html, config = _config(client, pid)
    assert config["picker"] is False
    assert config["keys"] == list("1234567890")
    assert 'id="picker-input"' not in html and "<kbd>s</kbd> Skip" in html
    # Letters that are their own keys never need a picker, however many.
    letters = make_project("letters", list("abcdefghijklmnopqrtuvwxyz"))  # no "s": the page skips with it
    assert _config(client, letters)[1]["picker"] is False


def test_the_openapi_document_describes_the_prediction_with_its_top_guesses(client):
    import jsonschema

    schemas = client.get("/api/openapi.json").json["components"]["schemas"]
    assert schemas["QueueItem"]["properties"]["prediction"]["allOf"] == [{"$ref": "#/components/schemas/Prediction"}]
    classes = [f"intent_{i:03d}" for i in range(150)]
    probs = np.random.default_rng(1).dirichlet(np.ones(150))
    for multi in (False, True):
        jsonschema.validate(_prediction(probs, classes, multi), schemas["Prediction"])
    with pytest.raises(jsonschema.ValidationError):  # the bound holds: six guesses are one too many
        jsonschema.validate({"top": [["a", 0.1]] * 6}, schemas["Prediction"])

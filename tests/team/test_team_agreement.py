"""Agreement numbers against hand-computed cases, and how export picks one label per item."""
from __future__ import annotations

import json

import pytest
from sklearn.metrics import cohen_kappa_score

from assay.domain.agreement import cohen_kappa, krippendorff_alpha_nominal, summarize
from assay.learning.resolution import resolve


def test_krippendorff_alpha_matches_the_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: alpha = 0.743.
    n = None
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    units = [[v for v in column if v is not None] for column in zip(*coders)]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def test_alpha_by_hand_on_a_small_case():
    # Units (x,x) (x,y) (y,y) (y,y): n=8 values, x:3 y:5. Observed = 2/(2-1) = 2;
    # expected = (64 - 9 - 25) / 7 = 30/7; alpha = 1 - 2 / (30/7) = 8/15.
    units = [["x", "x"], ["x", "y"], ["y", "y"], ["y", "y"]]
    assert krippendorff_alpha_nominal(units) == pytest.approx(8 / 15)
    assert krippendorff_alpha_nominal([["x", "x"], ["y", "y"]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([["x", "x"], ["x", "x"]]) is None  # no variation: undefined
    assert krippendorff_alpha_nominal([["x"], ["y"]]) is None  # nothing pairable


def test_cohen_kappa_by_hand_and_against_sklearn():
    a = ["x", "x", "y", "y"]
    b = ["x", "y", "y", "y"]
    # p_o = 3/4, p_e = .5*.25 + .5*.75 = .5, kappa = (.75 - .5) / .5 = .5
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    rng = __import__("random").Random(0)
    for _ in range(20):
        a = [rng.choice("abc") for _ in range(30)]
        b = [x if rng.random() < 0.6 else rng.choice("abc") for x in a]
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_summary_per_label_and_disagreements():
    units = {1: {"A": "x", "B": "x"}, 2: {"A": "x", "B": "y"}, 3: {"A": "y", "B": "y"}, 4: {"A": "y", "B": "y"},
             5: {"A": "x"}}
    s = summarize(units, ["x", "y"], multi_label=False)
    assert s["items_with_overlap"] == 4 and s["disagreements"] == 1 and s["disagreement_items"] == [2]
    assert s["alpha"] == pytest.approx(8 / 15)
    assert s["kappa"] == pytest.approx(0.5)
    # With two labels, "x vs not x" is the same partition as the labels themselves.
    assert s["per_label_alpha"]["x"] == pytest.approx(8 / 15)
    assert s["pairwise_kappa"] == [{"annotators": ["A", "B"], "items": 4, "kappa": pytest.approx(0.5)}]


def test_resolve_prefers_adjudication_then_majority_then_latest():
    def ans(label, who, source="annotator"):
        return {"label": label, "annotator": who, "source": source, "created_at": who}

    assert resolve([ans("x", "a"), ans("y", "b"), ans("x", "c")])["label"] == "x"
    assert resolve([ans("x", "a"), ans("y", "b")])["label"] == "y"  # a tie goes to the latest
    chosen = resolve([ans("x", "a"), ans("x", "b"), ans("y", "r", "review")])
    assert chosen["label"] == "y" and chosen["method"] == "adjudicated"
    assert resolve([]) is None


def test_overlap_two_agreement_review_and_export_through_the_api(client, make_project):
    pid = make_project("double", labels=("x", "y"), overlap=2, strategy="margin")
    client.post(f"/api/projects/{pid}/items", json=[{"id": str(i), "text": f"text {i}"} for i in range(4)])
    plan = {"A": ["x", "x", "y", "y"], "B": ["x", "y", "y", "y"]}
    seen = {}
    for who, labels in plan.items():
        items = client.get(f"/api/projects/{pid}/queue?n=10", headers={"X-Assay-Annotator": who}).json
        assert len(items) == 4, who  # overlap 2: both annotators get every item
        for item in items:
            label = labels[int(item["data"]["text"].split()[1])]
            r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": label},
                            headers={"X-Assay-Annotator": who})
            assert r.status_code == 201
            seen[item["data"]["text"]] = item["id"]
    # Everyone is done: a third annotator gets nothing.
    assert client.get(f"/api/projects/{pid}/queue?n=10", headers={"X-Assay-Annotator": "C"}).json == []
    agreement = client.get(f"/api/projects/{pid}/agreement").json
    assert agreement["kappa"] == pytest.approx(0.5) and agreement["alpha"] == pytest.approx(8 / 15)
    assert agreement["disagreements"] == 1 and agreement["annotators"] == ["A", "B"]
    disputed = client.get(f"/api/projects/{pid}/disagreements").json
    assert [d["id"] for d in disputed] == [seen["text 1"]]
    assert {a["annotator"]: a["label"] for a in disputed[0]["annotations"]} == {"A": "x", "B": "y"}
    assert disputed[0]["adjudicated"] is None

    r = client.post(f"/api/projects/{pid}/reviews", json={"item_id": seen["text 1"], "label": "x"},
                    headers={"X-Assay-Annotator": "R"})
    assert r.status_code == 201
    assert client.get(f"/api/projects/{pid}/disagreements").json[0]["adjudicated"] == "x"
    rows = [json.loads(x) for x in client.get(f"/api/projects/{pid}/export").data.decode().splitlines()]
    assert {r["data"]["text"]: r["label"] for r in rows} == {"text 0": "x", "text 1": "x", "text 2": "y",
                                                            "text 3": "y"}
    every = [json.loads(x) for x in
             client.get(f"/api/projects/{pid}/export?annotations=all").data.decode().splitlines()]
    assert len(every) == 9  # 4 items x 2 annotators + 1 review
    assert sorted(r["annotator"] for r in every if r["item_id"] == seen["text 1"]) == ["A", "B", "R"]


def test_review_page_shows_agreement_and_disputed_items(client, make_project):
    pid = make_project("rev", labels=("x", "y"), overlap=2, strategy="margin")
    client.post(f"/api/projects/{pid}/items", json=[{"id": "1", "text": "<b>disputed</b> text"}])
    for who, label in (("A", "x"), ("B", "y")):
        item = client.get(f"/api/projects/{pid}/queue?n=1", headers={"X-Assay-Annotator": who}).json[0]
        client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": label},
                    headers={"X-Assay-Annotator": who})
    page = client.get(f"/projects/{pid}/review").data.decode()
    assert "Krippendorff" in page and "&lt;b&gt;disputed&lt;/b&gt; text" in page and "<b>disputed" not in page
    assert 'data-label="x"' in page and "<strong>A</strong>: x" in page
    assert "Review agreement" in client.get(f"/projects/{pid}").data.decode()

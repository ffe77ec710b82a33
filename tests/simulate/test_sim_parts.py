"""The simulator's parts: data loading, the per-seed design, the summary figures."""
from __future__ import annotations

import json

import numpy as np
import pytest

from assay.simulate import report
from assay.simulate.data import DataError, load_dataset
from assay.simulate.run import Config, Experiment, SeedSetup
from assay.simulate.splits import allocate, cap_pool, holdout_split, initial_set


# -- data --------------------------------------------------------------------

def test_tsv_text_with_the_sms_header(sms_file):
    data = load_dataset(sms_file, label_column="Label", text_column="SMS")
    assert data.item_type == "text" and len(data.items) == 400
    assert data.classes == ["ham", "spam"]
    assert set(data.items[0]) == {"text"} and data.items[0]["text"].startswith("Go until jurong point")


def test_csv_tabular_uses_every_other_column(iris_csv):
    data = load_dataset(iris_csv, label_column="species", exclude_columns="id")
    assert data.item_type == "tabular" and len(data.items) == 150
    assert "species" not in data.items[0] and "id" not in data.items[0] and len(data.items[0]) == 4


def test_several_text_columns_are_joined_and_unlabeled_rows_dropped(tmp_path):
    path = tmp_path / "news.jsonl"
    rows = [{"label": "1", "title": "Cup final", "description": "A late goal."},
            {"label": "", "title": "no label", "description": "dropped"},
            {"label": "2", "title": "Rates", "description": "Banks hold."}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = load_dataset(str(path), text_column="title,description")
    assert [i["text"] for i in data.items] == ["Cup final\nA late goal.", "Rates\nBanks hold."]
    assert data.labels.tolist() == ["1", "2"] and data.dropped == 1


def test_an_image_folder_with_its_labels_file(tmp_path):
    from PIL import Image

    for i in range(4):
        Image.fromarray(np.full((4, 4), 60 * i, dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "labels.csv").write_text("file,label\n" + "".join(f"im{i}.png,{'ab'[i % 2]}\n" for i in range(4)))
    data = load_dataset(str(tmp_path), image_column="file")
    assert data.item_type == "image" and data.featurizer_params == {"root": str(tmp_path)}
    assert data.items[3] == {"image": "im3.png"} and data.labels.tolist() == ["a", "b", "a", "b"]


def test_digits_are_written_as_images_once(tmp_path):
    data = load_dataset("sklearn:digits", cache_dir=str(tmp_path))
    assert data.item_type == "image" and len(data.items) == 1797 and len(data.classes) == 10
    from assay.features import make_featurizer

    X = make_featurizer("image", **data.featurizer_params).fit_transform(data.items[:50])
    assert X.shape == (50, 64)
    stamp = (tmp_path / "sklearn-digits" / "digit-0000.png").stat().st_mtime_ns
    load_dataset("sklearn:digits", cache_dir=str(tmp_path))
    assert (tmp_path / "sklearn-digits" / "digit-0000.png").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("source, kwargs, message", [
    ("sklearn:nope", {}, "unknown data set"),
    ("/no/such/file.csv", {}, "no such file"),
])
def test_unloadable_sources_say_why(source, kwargs, message):
    with pytest.raises(DataError, match=message):
        load_dataset(source, **kwargs)


def test_a_single_class_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("text,label\na,x\nb,x\n")
    with pytest.raises(DataError, match="at least two"):
        load_dataset(str(path), text_column="text")


# -- the per-seed design -----------------------------------------------------

def test_allocate_is_proportional_with_one_per_group():
    assert allocate([4827, 747], 20).tolist() == [17, 3]
    assert allocate([100] * 10, 20).tolist() == [2] * 10
    assert allocate([50, 2, 1], 10).tolist() == [8, 1, 1]
    assert allocate([3, 3], 100).tolist() == [3, 3]
    for counts, total in (([7, 1900, 13], 31), ([1, 1, 1, 1], 3)):
        assert allocate(counts, total).sum() == total


def test_the_holdout_split_is_stratified_and_disjoint():
    labels = np.array(["a"] * 90 + ["b"] * 10, dtype=object)
    train, test = holdout_split(labels, 0.3, np.random.default_rng(0))
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100
    assert (labels[test] == "a").sum() == 27 and (labels[test] == "b").sum() == 3
    again, _ = holdout_split(labels, 0.3, np.random.default_rng(0))
    np.testing.assert_array_equal(train, again)


def test_a_class_of_one_stays_in_training():
    labels = np.array(["a"] * 20 + ["rare"], dtype=object)
    train, test = holdout_split(labels, 0.5, np.random.default_rng(1))
    assert 20 in train and 20 not in test


def test_the_pool_cap_and_the_initial_set_keep_every_class():
    rng = np.random.default_rng(3)
    labels = np.array(["a"] * 900 + ["b"] * 90 + ["c"] * 10, dtype=object)
    pool = cap_pool(np.arange(1000), labels, 100, rng)
    assert len(pool) == 100 and set(labels[pool]) == {"a", "b", "c"}
    first = initial_set(labels[pool], 5, rng)
    assert len(first) == 5 and set(labels[pool][first]) == {"a", "b", "c"}
    assert cap_pool(np.arange(1000), labels, None, rng).tolist() == list(range(1000))


# -- summary figures ---------------------------------------------------------

def _experiment(curves: dict, full=(0.9, 0.9)) -> Experiment:
    rows = [{"strategy": s, "seed": seed, "n_labels": n, "accuracy": a, "macro_f1": a, "fit_seconds": 0.1,
             "acquire_seconds": 0.2} for s, by_seed in curves.items() for seed, points in enumerate(by_seed)
            for n, a in points]
    setups = [SeedSetup(i, "", 100, 50, 4, ["a", "b"], np.arange(2), f, f, 0.0, 0.0) for i, f in enumerate(full)]
    return Experiment(Config(strategies=tuple(curves), initial=10, batch=10, budget=40), setups, rows, 1.0, 1)


def test_labels_to_95_and_the_ratio_to_random():
    # target = 0.95 * 0.9 = 0.855
    experiment = _experiment({
        "random": [[(10, 0.5), (20, 0.6), (30, 0.8), (40, 0.86)]] * 2,
        "good": [[(10, 0.5), (20, 0.86), (30, 0.88), (40, 0.89)], [(10, 0.5), (20, 0.84), (30, 0.87), (40, 0.9)]],
        "bad": [[(10, 0.5), (20, 0.5), (30, 0.5), (40, 0.5)]] * 2,
    })
    summary = {s["strategy"]: s for s in report.summarize(experiment)}
    assert summary["random"]["labels_to_95"] == 40 and summary["random"]["ratio_note"] == "1.00"
    # The mean curve of "good" is 0.85 at 20 labels (below target) and 0.875 at 30.
    assert summary["good"]["labels_to_95"] == 30 and summary["good"]["ratio_to_random"] == pytest.approx(0.75)
    assert summary["good"]["seeds_reaching_95"] == "2/2"
    assert summary["bad"]["labels_to_95"] is None and summary["bad"]["ratio_note"] == "not reached"
    assert summary["good"]["accuracy_mean"] == pytest.approx(0.895)
    assert summary["good"]["accuracy_std"] == pytest.approx(0.005)
    # The area is the mean accuracy along the curve: trapezoids over 30 labels.
    assert summary["bad"]["aulc_mean"] == pytest.approx(0.5)
    assert summary["random"]["aulc_mean"] == pytest.approx((0.55 + 0.7 + 0.83) / 3)
    assert summary["random"]["acquire_seconds_mean"] == pytest.approx(0.2)


def test_a_ratio_is_only_bounded_when_random_never_gets_there():
    experiment = _experiment({
        "random": [[(10, 0.5), (20, 0.6), (30, 0.7), (40, 0.8)]] * 2,
        "good": [[(10, 0.5), (20, 0.9), (30, 0.9), (40, 0.9)]] * 2,
    })
    summary = {s["strategy"]: s for s in report.summarize(experiment)}
    assert summary["good"]["ratio_to_random"] is None
    assert summary["good"]["ratio_note"] == "<0.50 (random not reached)"
    text = report.table(experiment, report.summarize(experiment))
    assert "0.9000 ± 0.0000" in text and "not reached" in text


def test_a_strategy_whose_runs_all_failed_is_named_not_dropped():
    experiment = _experiment({"random": [[(10, 0.5), (20, 0.6), (30, 0.7), (40, 0.8)]] * 2})
    experiment.config = Config(strategies=("random", "influence"), initial=10, batch=10, budget=40)
    summary = report.summarize(experiment)
    assert [s["strategy"] for s in summary] == ["random"]
    assert any(line.startswith("influence") and "no run finished" in line
               for line in report.table(experiment, summary).splitlines())


class CountingItemWise:
    """A featurizer whose vectors depend only on each item, counting the items it transforms."""

    item_wise = True
    transformed = 0

    def fit(self, items):
        return self

    def transform(self, items):
        CountingItemWise.transformed += len(items)
        return np.array([[len(item["text"]), item["text"].count(" ")] for item in items], dtype=np.float32)


def counting_item_wise():
    return CountingItemWise()


def test_an_item_wise_featurizer_runs_once_for_all_seeds(sms_file):
    """Sentence embeddings learn nothing from the pool: every seed reuses one pass over the items."""
    from assay.simulate.run import run_experiment

    dataset = load_dataset(sms_file, label_column="Label", text_column="SMS")
    config = Config(strategies=("random",), featurizer=f"{__name__}:counting_item_wise", initial=4, batch=4,
                    budget=8, seeds=(0, 1, 2))
    CountingItemWise.transformed = 0
    experiment = run_experiment(dataset, config)
    assert CountingItemWise.transformed == len(dataset.items)
    assert len({s.n_train for s in experiment.setups}) == 1 and not experiment.failures
    rows = [r for r in experiment.rows if r["seed"] == 1]
    assert [r["n_labels"] for r in rows] == [4, 8]

"""Pool scoring on a Dask cluster (server.learning.cluster): the same picks as one process, shard by shard."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("distributed")

from assay import strategies  # noqa: E402
from assay.learning.acquire import fit_model, run_round  # noqa: E402
from assay.learning.cluster import read_shard, select_on_cluster, shard_rows, write_shards  # noqa: E402
from assay.simulate.command import simulate_command  # noqa: E402
from assay.strategies import ModelOutputs, stochastic  # noqa: E402

N, D, C = 3_000, 8, 3


@pytest.fixture(scope="module")
def dask_client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def pool():
    """A 3-class pool and a logistic regression fitted on 60 labeled rows of it."""
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(C, D)) * 1.5
    y = rng.integers(C, size=N + 60)
    X = (centers[y] + rng.normal(size=(N + 60, D))).astype(np.float32)
    model = fit_model("logreg", {}, X[:60], np.array([f"c{v}" for v in y[:60]], dtype=object), random_state=0)
    return X[60:], model, X[:60], np.array([f"c{v}" for v in y[:60]], dtype=object)


@pytest.fixture(scope="module")
def layouts(pool, tmp_path_factory):
    """The same pool as shards of several row counts (even, uneven with a short last one, a dozen)."""
    X = pool[0]
    out = {}
    for rows in (1_000, 701, 257):
        out[rows] = write_shards(X, np.arange(100, 100 + N), str(tmp_path_factory.mktemp(f"shards{rows}")), rows)
    return out


def test_shards_round_trip(pool, layouts):
    X = pool[0]
    paths = layouts[701]
    assert shard_rows(paths) == [701, 701, 701, 701, 196]
    ids, X0 = read_shard(paths[1])
    assert ids.tolist() == list(range(801, 1502))
    assert X0.dtype == np.float32 and np.array_equal(X0, X[701:1402])


@pytest.mark.parametrize("name", ["margin", "entropy", "least_confidence"])
def test_top_k_equals_one_process(dask_client, pool, layouts, name):
    X, model = pool[:2]
    strategy = strategies.get(name)
    expected = strategy.select(ModelOutputs(probs_N_C=model.predict_proba(X)), 50)
    for rows, paths in layouts.items():
        got = select_on_cluster(dask_client, paths, model, strategy, 50, np.random.default_rng(0))
        assert got.indices.tolist() == expected.indices.tolist(), rows
        np.testing.assert_allclose(got.scores, expected.scores)
        # float32 features: a product's last bit may depend on how many rows it was computed with.
        np.testing.assert_allclose(got.probs_B_C, model.predict_proba(X[got.indices]), rtol=1e-5)


@pytest.mark.parametrize("name", ["power_margin", "softmax_entropy", "softrank_margin"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stochastic_equals_one_process(dask_client, pool, layouts, name, seed):
    """The Gumbel noise of each shard is the slice one process draws, so the picks (in draw order) match, and
    the Generator ends where one process leaves it."""
    X, model = pool[:2]
    strategy = strategies.get(name, beta=3.0)
    one = np.random.default_rng(seed)
    one.integers(10)  # a Generator already drawn from (a buffered 32-bit half), as run_round's is
    expected = strategy.select(ModelOutputs(probs_N_C=model.predict_proba(X)), 40, random_state=one)
    for rows, paths in layouts.items():
        rng = np.random.default_rng(seed)
        rng.integers(10)
        got = select_on_cluster(dask_client, paths, model, strategy, 40, rng)
        assert got.indices.tolist() == expected.indices.tolist(), rows
        # float32 features: a product's last bit may depend on how many rows it was computed with.
        np.testing.assert_allclose(got.probs_B_C, model.predict_proba(X[got.indices]), rtol=1e-5)
        assert rng.bit_generator.state == one.bit_generator.state


def test_power_with_few_positive_scores_fills_as_one_process():
    """Fewer positive scores than the batch: stochastic_batch draws them all, then fills by bare noise."""
    scores = np.zeros(500)
    scores[[3, 77, 250, 401]] = [0.5, 0.1, 0.9, 0.2]
    for seed in range(3):
        expected = stochastic.stochastic_batch(scores, 20, "power", 2.0, random_state=seed)
        gumbel = np.random.default_rng(seed).gumbel(size=len(scores))
        parts = []
        for start in range(0, 500, 130):
            part = stochastic.shard_candidates(scores[start:start + 130], gumbel[start:start + 130], 20, "power", 2.0)
            part["index"] = part["index"] + start
            part["fill_index"] = part["fill_index"] + start
            parts.append(part)
        assert stochastic.merge_candidates(parts, 20, "power", 2.0).tolist() == expected.tolist()


def test_shard_merge_rejects_negative_scores_in_power_mode():
    part = stochastic.shard_candidates(np.array([-0.5, 1.0]), np.zeros(2), 1, "power", 1.0)
    with pytest.raises(strategies.StrategyInputError, match="power mode needs scores >= 0"):
        stochastic.merge_candidates([part], 1, "power", 1.0)


def test_dpp_shortlist_gives_distinct_valid_rows(dask_client, pool, layouts):
    X, model = pool[:2]
    got = select_on_cluster(dask_client, layouts[257], model, strategies.get("dpp"), 30, np.random.default_rng(0))
    assert len(got.indices) == 30 and len(set(got.indices.tolist())) == 30
    assert got.indices.min() >= 0 and got.indices.max() < N
    # The shortlist holds the most uncertain items: each pick is among the 2,000 of highest DPP quality.
    quality = strategies.registry._dpp_quality(ModelOutputs(probs_N_C=model.predict_proba(X)))
    assert quality[got.indices].min() >= np.sort(quality)[-2_000]


@pytest.mark.parametrize("name", ["margin", "power_margin"])
def test_run_round_on_the_cluster_picks_as_one_process(dask_client, pool, name):
    """The retrain's round: same batch, same queue beyond it, same per-row predictions (the accuracy estimate's)."""
    X, _, X_labeled, y_labeled = pool
    kwargs = dict(model_spec="logreg", model_params={}, strategy_name=name, strategy_params=None,
                  X_labeled=X_labeled, y_labeled=list(y_labeled), X_pool=X, batch_size=25, random_state=11,
                  depth=200)
    one = run_round(**kwargs)
    many = run_round(**kwargs, cluster=dask_client)
    assert many.indices.tolist() == one.indices.tolist()
    assert many.more_indices.tolist() == one.more_indices.tolist()
    assert many.more_strategy == one.more_strategy
    np.testing.assert_allclose(many.probs_B_C, one.probs_B_C, rtol=1e-5)
    np.testing.assert_allclose(many.more_probs, one.more_probs, rtol=1e-5)
    assert np.array_equal(many.pool_pred_N, one.pool_pred_N)
    np.testing.assert_allclose(many.pool_top_N_K, one.pool_top_N_K, rtol=1e-5)


def test_retrain_job_connects_when_assay_cluster_is_set(monkeypatch):
    from assay.learning import job

    monkeypatch.delenv("ASSAY_CLUSTER", raising=False)
    with job._cluster() as none:
        assert none is None
    monkeypatch.setenv("ASSAY_CLUSTER", "local")
    monkeypatch.setenv("ASSAY_CLUSTER_WORKERS", "1")
    with job._cluster() as c:
        assert isinstance(c, distributed.Client)
        assert c.submit(sum, [1, 2]).result() == 3


def test_simulate_with_cluster_local_retraces_one_process(tmp_path):
    """`assay simulate --cluster local`: the same learning curve as without (margin is deterministic)."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    path = tmp_path / "iris.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*bunch.feature_names, "species"])
        writer.writerows([*row, bunch.target_names[t]] for row, t in zip(bunch.data.tolist(), bunch.target))
    curves = []
    for extra in ([], ["--cluster", "local"]):
        out = tmp_path / ("cluster" if extra else "one")
        result = CliRunner(env={"ASSAY_CLUSTER_WORKERS": "1"}).invoke(simulate_command, [
            str(path), "--label-column", "species", "--strategies", "margin,power_margin", "--initial", "6",
            "--budget", "18", "--batch", "4", "--seeds", "1", "--out", str(out), "--no-progress", *extra])
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(open(out / "curves.csv", newline="")))
        curves.append([(r["strategy"], r["n_labels"], r["accuracy"], r["estimated_accuracy"]) for r in rows])
    assert curves[0] == curves[1]


def test_local_cluster_starts_inside_a_daemonic_process():
    """The server's retrain worker is daemonic (no children allowed): ``local`` must still give a cluster there."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_connect_and_add, args=(queue,), daemon=True)
    proc.start()
    try:
        assert queue.get(timeout=120) == ("ok", 3)
    finally:
        proc.join(30)


def _connect_and_add(queue):
    os.environ["ASSAY_CLUSTER_WORKERS"] = "1"
    try:
        from assay.learning.cluster import connect

        with connect("local") as c:
            queue.put(("ok", c.submit(sum, [1, 2]).result()))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        queue.put(("error", repr(exc)))


def test_retrain_job_with_assay_cluster_local_queues_as_without(app, client, make_project, monkeypatch):
    """A whole retrain (the worker's run_job on the app's database): with ASSAY_CLUSTER=local, the same queue."""
    from assay.learning import cluster
    from assay.learning.job import run_job
    from assay.learning.records import Job
    from tests.data import load_adult

    rows = load_adult(400)
    pid = make_project("adult", labels=["<=50K", ">50K"], item_type="tabular", strategy="margin",
                       retrain_every=1000)
    payload = [{k: v for k, v in row.items() if k != "income"} for row in rows[40:]]
    assert client.post(f"/api/projects/{pid}/items", json=payload).json["imported"] == 360
    assert client.post(f"/api/projects/{pid}/items?label_column=income", json=rows[:40]).json["imported"] == 40
    service = app.extensions["assay.retrain"]
    assert service.wait_idle(120)
    job = Job(service.db.path, service.cache_root, service.media_root, pid, dict(service.settings, seed=3))
    monkeypatch.delenv("ASSAY_CLUSTER", raising=False)
    one = run_job(job)
    monkeypatch.setenv("ASSAY_CLUSTER", "local")
    monkeypatch.setenv("ASSAY_CLUSTER_WORKERS", "1")
    sent = []
    real = cluster.cluster_round
    monkeypatch.setattr(cluster, "cluster_round", lambda *a, **k: sent.append(len(a[1])) or real(*a, **k))
    many = run_job(job)
    assert sent == [360]  # the pool went to the cluster
    assert one.version.status == "ok" and one.version.n_labels == 40
    assert [r["item_id"] for r in many.queue] == [r["item_id"] for r in one.queue]
    assert [r["strategy"] for r in many.queue] == [r["strategy"] for r in one.queue]
    assert many.version.estimate == pytest.approx(one.version.estimate)

"""``assay simulate``: the command line of the simulator."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time

import click

from assay.domain.settings import settings
from assay.learning.defaults import AUDIT_SHARE, K_SAMPLES

DEFAULT_STRATEGIES = "random,margin,default"


def _descriptions(pairs) -> dict:
    """``LABEL=TEXT`` options as a dict of strings (no JSON reading: "1=World" keeps its label "1")."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected LABEL=TEXT, got {pair!r}", param_hint="--label-description")
        out[key] = value
    return out


def _key_values(pairs, option: str) -> dict:
    """``KEY=VALUE`` options as a dict; values are read as JSON when they parse (numbers, lists), else strings."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


# How ``all`` lists the registry: random first (the baseline), each top-k form, then the stochastic forms.
_FIRST = ("random", "least_confidence", "margin", "entropy", "bald", "batchbald", "dpp", "influence")


def _display_order(name: str):
    if name in _FIRST:
        return (0, _FIRST.index(name), "")
    mode, _, score = name.partition("_")
    return (1, _FIRST.index(score) if score in _FIRST else len(_FIRST), mode)


def resolve_strategies(names: str, model_spec: str, model_params: dict, with_peers: bool) -> tuple[list, list]:
    """(strategies to run, notes on what was skipped). ``all`` means every registry strategy the model supports."""
    import assay.strategies as registry

    from assay.models import ModelError, capabilities, make_model, missing_for
    from . import peers

    try:
        model = make_model(model_spec, **model_params)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    have = capabilities(model)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    notes = []
    if "all" in wanted:
        supported = sorted((n for n in registry.available() if not missing_for(n, model)), key=_display_order)
        notes += [f"skipped {n}: {model_spec} lacks {', '.join(sorted(missing_for(n, model)))}"
                  for n in registry.available() if missing_for(n, model)]
        wanted = [n for n in wanted if n != "all"] + supported
    chosen = []
    for name in dict.fromkeys(wanted):
        if name in peers.PEERS:
            chosen.append(name)
            continue
        try:
            missing = missing_for(name, model)
        except registry.StrategyInputError as exc:
            raise click.ClickException(str(exc)) from None
        if missing:
            raise click.ClickException(f"strategy {name!r} needs {', '.join(sorted(missing))}, which model "
                                       f"{model_spec!r} does not give")
        chosen.append(name)
    if registry.BASELINE not in chosen:
        notes.append(f"no {registry.BASELINE!r} run: ratios to {registry.BASELINE} will be empty")
    if with_peers:
        for name, peer in peers.PEERS.items():
            reason = peers.unavailable_reason(name)
            if reason is None and peer.needs - have:
                reason = f"model {model_spec!r} lacks {', '.join(sorted(peer.needs - have))}"
            if reason:
                notes.append(f"skipped peer {name}: {reason}")
            elif name not in chosen:
                chosen.append(name)
    for name in chosen:
        if name in peers.PEERS and peers.unavailable_reason(name):
            raise click.ClickException(f"peer strategy {name}: {peers.unavailable_reason(name)}")
    return chosen, notes


@click.command("simulate")
@click.argument("data")
@click.option("--label-column", default="label", show_default=True)
@click.option("--text-column", default=None, help="Text items from this column (comma-separate several to join them).")
@click.option("--image-column", default=None,
              help="Image items: the column of file paths (relative to the file's folder).")
@click.option("--feature-columns", default=None,
              help="Tabular items from these comma-separated columns (default: every column but the label).")
@click.option("--exclude-columns", default=None, help="Columns never used as tabular features (e.g. an id).")
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "jsonl", "json"]), default=None,
              help="File format (default: from the extension, else sniffed).")
@click.option("--strategies", "strategy_names", default=DEFAULT_STRATEGIES, show_default=True,
              help="Comma-separated registry names (see `assay strategies`), or 'all' that the model supports.")
@click.option("--model", default="logreg", show_default=True)
@click.option("--model-param", multiple=True, metavar="KEY=VALUE")
@click.option("--featurizer", default=None, help="Featurizer name (default: the item type's default).")
@click.option("--featurizer-param", multiple=True, metavar="KEY=VALUE", help="E.g. size=[8,8] or n_components=128.")
@click.option("--initial", type=click.IntRange(1), default=20, show_default=True,
              help="Labels revealed before the first round (stratified, one per class when possible).")
@click.option("--batch", type=click.IntRange(1), default=10, show_default=True)
@click.option("--budget", type=click.IntRange(2), default=500, show_default=True,
              help="Labels in all, initial included.")
@click.option("--seeds", type=click.IntRange(1), default=5, show_default=True, help="Seeds 0..N-1.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.3,
              show_default=True, help="Held out per seed (stratified) when no --test-data is given.")
@click.option("--test-data", default=None, type=click.Path(exists=True, dir_okay=False),
              help="A fixed test set, read with the same column options as DATA: then all of DATA is the pool "
                   "(capped by --max-pool) and --test-fraction is ignored.")
@click.option("--max-pool", type=click.IntRange(1), default=None,
              help="Cap the training split (the pool) at this many items, stratified, per seed.")
@click.option("--k-samples", type=click.IntRange(1), default=K_SAMPLES, show_default=True,
              help="Posterior samples for BALD-type strategies (as the server's retrain).")
@click.option("--audit-share", type=click.FloatRange(settings()["audit_share"].low, settings()["audit_share"].high),
              default=AUDIT_SHARE, show_default=True,
              help="The share of labels drawn uniformly from the pool for the accuracy estimate, as a project's "
                   "audit_share (they count in the budget).")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes; the (strategy, seed) runs are spread over them.")
@click.option("--cluster", default=None, envvar="ASSAY_CLUSTER", metavar="ADDRESS",
              help="Score each round's pool on a Dask cluster: a scheduler address (tcp://host:8786) or 'local' "
                   "(a LocalCluster of 2 workers). Top-k and power/softmax/softrank picks are the same as in one "
                   "process; dpp uses a shortlist. Default: $ASSAY_CLUSTER, else one process.")
@click.option("--peers", "with_peers", is_flag=True,
              help="Also run modAL's and BaaL's corresponding strategies on the same fits.")
@click.option("--out", "out_dir", default="simulation", show_default=True, type=click.Path(file_okay=False))
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="Where sklearn:digits images are written (default: a folder under the temp dir).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="A progress bar on stderr.")
@click.option("--label-names", type=click.Choice(["names", "off", "random"]), default="names", show_default=True,
              help="What the model starts from (text with MiniLM): the label names' zero-shot weights (names, or the "
                   "descriptions --label-description gives), nothing (off, as before issue 28), or random strings "
                   "in their place (random: what useless names cost).")
@click.option("--label-description", "label_description", multiple=True, metavar="LABEL=TEXT",
              help="A label's one-line description, embedded instead of its name (a project's label_descriptions), "
                   "e.g. 1=World for AG News's numbered classes.")
def simulate_command(data, label_column, text_column, image_column, feature_columns, exclude_columns, fmt,
                     strategy_names, model, model_param, featurizer, featurizer_param, initial, batch, budget, seeds,
                     test_fraction, test_data, max_pool, k_samples, audit_share, jobs, cluster, with_peers, out_dir,
                     cache_dir, progress, label_names, label_description):
    """Replay the labeling loop on DATA, whose labels are known, revealing a label only when a strategy asks.

    DATA is a CSV/TSV/JSONL file, a folder of images with one labels file, or
    sklearn:digits (images), sklearn:iris, sklearn:wine, sklearn:breast_cancer.
    Writes curves.csv, summary.csv and curves.png to --out and prints the summary.
    """
    from .data import DataError, load_dataset, with_test_set
    from .report import table, write_all
    from .run import Config, run_experiment

    if budget <= initial:
        raise click.BadParameter(f"the budget ({budget}) must exceed the initial labels ({initial})",
                                 param_hint="--budget")
    if text_column and image_column:
        raise click.UsageError("give --text-column or --image-column, not both")
    model_params = _key_values(model_param, "--model-param")
    featurizer_params = _key_values(featurizer_param, "--featurizer-param")
    names, notes = resolve_strategies(strategy_names, model, model_params, with_peers)
    try:
        dataset = load_dataset(data, label_column=label_column, text_column=text_column, image_column=image_column,
                               feature_columns=feature_columns, exclude_columns=exclude_columns, fmt=fmt,
                               cache_dir=cache_dir)
        if test_data:
            dataset = with_test_set(dataset, load_dataset(
                test_data, label_column=label_column, text_column=text_column, image_column=image_column,
                feature_columns=feature_columns, exclude_columns=exclude_columns, fmt=fmt, cache_dir=cache_dir,
                min_classes=1))
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    config = Config(strategies=tuple(names), model=model, model_params=model_params, featurizer=featurizer,
                    featurizer_params=featurizer_params, initial=initial, batch=batch, budget=budget,
                    seeds=tuple(range(seeds)), test_fraction=test_fraction, max_pool=max_pool, k_samples=k_samples,
                    audit_share=audit_share, cluster=cluster or None, label_names=label_names,
                    label_descriptions=tuple(sorted(_descriptions(label_description).items())))
    err = sys.stderr
    from assay.features import resolve

    notes = notes + [n for n in [resolve(dataset.item_type, featurizer)[1]] if n]
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{dataset.name}: {len(dataset.items):,} {dataset.item_type} items, {len(dataset.classes)} classes"
               + (f" ({dataset.dropped} rows without a label dropped)" if dataset.dropped else "")
               + (f", the last {len(dataset.items) - dataset.test_start:,} from --test-data"
                  if dataset.test_start is not None else "")
               + f"; {len(names)} strategies x {seeds} seeds; preparing splits and features...", err=True)

    with contextlib.ExitStack() as stack:
        bar = {}

        def on_prepared(setups):
            total = sum(config.rounds(s.n_train) for s in setups) * len(names)
            if not progress:
                return
            if err.isatty():
                bar["bar"] = stack.enter_context(click.progressbar(length=total, label="rounds", file=err,
                                                                   show_eta=True, show_pos=True))
            else:
                # click draws no bar into a file or pipe (e.g. under nohup): log a line now and then instead.
                bar["log"] = _ProgressLog(total, err)

        def advance(n):
            if "bar" in bar:
                bar["bar"].update(n)
            elif "log" in bar:
                bar["log"].update(n)

        try:
            experiment = run_experiment(dataset, config, jobs=jobs, progress=advance, on_prepared=on_prepared)
        except Exception as exc:  # noqa: BLE001 - featurizer/model/strategy errors become messages
            from assay.features import FeaturizerError
            from assay.models import ModelError
            from assay.strategies import StrategyInputError

            if isinstance(exc, (FeaturizerError, ModelError, StrategyInputError)):
                raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
            raise

    title = f"{dataset.name}: {model}, batch {batch}, {seeds} seed{'s' if seeds != 1 else ''}"
    summary, files = write_all(experiment, out_dir, title)
    with open(os.path.join(out_dir, "run.json"), "w", encoding="utf-8") as fh:
        json.dump(_run_record(sys.argv, dataset, config, experiment, notes, jobs), fh, indent=2, default=str)
    click.echo(table(experiment, summary))
    click.echo("wrote " + ", ".join(files + [os.path.join(out_dir, "run.json")]))
    if experiment.failures:
        for failure in experiment.failures:
            click.echo(f"failed: {failure}", err=True)
        raise click.ClickException(f"{len(experiment.failures)} run(s) failed; the files hold the others")


class _ProgressLog:
    """Progress as occasional lines, for a stderr that is not a terminal."""

    def __init__(self, total: int, stream, every_seconds: float = 30.0):
        self.total, self.stream, self.every = total, stream, every_seconds
        self.done = 0
        self.start = self.last = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            elapsed = now - self.start
            eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
            click.echo(f"rounds {self.done}/{self.total} ({100 * self.done / max(self.total, 1):.0f}%), "
                       f"{elapsed:.0f} s elapsed, about {eta:.0f} s left", file=self.stream)


def _run_record(argv, dataset, config, experiment, notes, jobs) -> dict:
    import numpy
    import sklearn

    return {
        "argv": list(argv), "data": dataset.name, "item_type": dataset.item_type, "n_items": len(dataset.items),
        "classes": dataset.classes, "config": config.__dict__, "jobs": jobs, "seconds": experiment.seconds,
        "seeds": [s.summary() for s in experiment.setups], "notes": notes,
        "failures": experiment.failures,
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                     "scikit-learn": sklearn.__version__},
    }

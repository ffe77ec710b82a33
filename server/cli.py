"""The ``assay`` command: a FlaskGroup holding Assay's commands only.

Flask's ``run`` is left out: it would start the development server on any
address with authentication off, past the loopback rule ``serve`` keeps.
``routes`` and ``shell`` are left out too, so that ``assay --help`` lists only
what an Assay user needs.
"""
from __future__ import annotations

import copy
import errno
import ipaddress
import os
import socket
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

# Only what the commands' options need at import (formats, settings): the rest is imported by the command
# that uses it, so that `assay --help` or `assay export` do not pay for numpy, scipy or pyarrow.
from .domain import export as export_mod
from .domain import ingest, settings
from .web import get_db
from . import store
from .errors import AssayError, BadRequest
from .store.postgres import redacted
from .simulate.command import simulate_command

DEMO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")


def _fail(exc: AssayError):
    raise click.ClickException(exc.message)


def _user(name: str) -> dict:
    try:
        return store.get_user(get_db(), name)
    except AssayError as exc:
        _fail(exc)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (socket.gaierror, ValueError):
            return False


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create the database or bring its schema up to date."""
    applied = get_db().migrate()
    click.echo(f"database {redacted(get_db().path)}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))


def _comma_list(ctx, param, value):
    return None if value is None else [part.strip() for part in value.split(",")]


def _settings_options(command):
    """One option per project setting, with the default, allowed values and help ProjectSettings gives it."""
    dflts = settings.defaults()
    types = {"integer": int, "number": float}
    for name, s in reversed(settings.settings().items()):
        if not s.on_cli or name == "name":  # the name is the command's argument
            continue
        options = {"help": s.help, "metavar": s.metavar}
        if s.kind == "boolean":
            options["is_flag"] = True
        elif name not in dflts:
            options["required"] = True
        else:
            options["default"] = dflts[name]
            options["show_default"] = dflts[name] is not None
            if s.kind == "choice":
                options["type"] = click.Choice(list(s.choices))
            elif s.kind in types:
                options["type"] = types[s.kind]
        if s.kind == "list":
            options["callback"] = _comma_list
        command = click.option("--" + name.replace("_", "-"), **options)(command)
    return command


@click.command("create-project")
@click.argument("name")
@_settings_options
@with_appcontext
def create_project_command(name, **options):
    """Create a labeling project; prints its id."""
    from .domain import projects

    try:
        project_id = projects.create(get_db(), {"name": name, **options})
    except AssayError as exc:
        _fail(exc)
    click.echo(project_id)
    _warn_if_servers_cannot_import(options)


def _warn_if_servers_cannot_import(options: dict) -> None:
    """Warn when a running server could not import the plug-in this command just accepted.

    This command imported the model in its own process; the server imports it in its retrain worker,
    with the sys.path it started with. A PYTHONPATH exported in this shell after `assay serve` started
    elsewhere reaches only this command, and the server's first retrain would fail with "No module named".
    """
    from .plugins import is_import_path
    from .running import ask_importable, live_servers

    wanted = [(kind, options.get(kind)) for kind in ("model", "featurizer") if is_import_path(options.get(kind))]
    if not wanted:
        return
    for server in live_servers(current_app.instance_path, current_app.config["DATABASE"]):
        for kind, spec in wanted:
            error = ask_importable(server, kind, spec)
            if error is None:
                continue
            click.echo(
                f"warning: the server running at {server['url']} (process {server['pid']}) cannot import {kind} "
                f"{spec}: {error}. Its retrains of this project will fail until it can: stop it and start "
                f"`assay serve` again where the module imports (the same PYTHONPATH as here, or with your "
                f"package pip-installed in its environment). The project was created.", err=True)


@click.command("strategies")
def strategies_command():
    """List the acquisition strategies and what each needs from the model."""
    from assay import strategies

    for name in strategies.available():
        s = strategies.get(name)
        needs = ", ".join(sorted(s.needs)) or "nothing"
        click.echo(f"{name:24s} needs {needs:20s} {s.description}")


def read_records(project: dict, path: str, options: ingest.ImportOptions, fmt: str | None = None) -> list[dict]:
    """Records from a data file, or for image projects from a folder, a zip or a CSV of image paths."""
    from .web import media

    if project["item_type"] == "image":
        root = current_app.config["MEDIA_DIR"]
        if os.path.isdir(path):
            return media.records_from_folder(root, project, path)
        if path.lower().endswith(".zip"):
            with open(path, "rb") as fh:
                return media.records_from_zip(root, project, fh.read())
        if path.lower().endswith(".csv"):
            return media.records_from_csv_paths(root, project, path, options.image_column)
    if os.path.isdir(path):
        raise click.ClickException(f"{path} is a folder; folders are imported into image projects only")
    with open(path, "rb") as fh:
        raw = fh.read()
    fmt = fmt or ingest.guess_format(path, raw[:4096])
    return ingest.parse_records(raw, fmt, path)


def import_file(db, project: dict, path: str, options: ingest.ImportOptions, fmt: str | None = None,
                echo=True) -> ingest.ImportResult:
    records = read_records(project, path, options, fmt)
    folders = project["item_type"] == "image" and (os.path.isdir(path) or path.lower().endswith(".zip"))
    return ingest.import_items(db, project, records, options, folder_labels=folders,
                               progress=_progressbar if echo else None)


def _progressbar(rows: int):
    return click.progressbar(length=rows, label=f"importing {rows} row{'' if rows == 1 else 's'}", file=sys.stderr)


@click.command("import")
@click.argument("project")
@click.argument("file", type=click.Path(exists=True, dir_okay=True))
@click.option("--text-column", default="text", show_default=True)
@click.option("--id-column", default="id", show_default=True,
              help="External id; re-imports skip known ids. 'none' for no id column.")
@click.option("--label-column", default=None,
              help="A column of existing labels (a seed set), read only when given; default: none. Images in a "
                   "folder per label are labeled by their folder.")
@click.option("--image-column", default="image", show_default=True)
@click.option("--format", "fmt", type=click.Choice(ingest.FORMATS), default=None, help="Default: from the name.")
@click.option("--skip-invalid", is_flag=True,
              help="Leave out the rows that cannot be imported (an empty text, an unknown label...) and list them, "
                   "instead of refusing the file.")
@with_appcontext
def import_command(project, file, text_column, id_column, label_column, image_column, fmt, skip_invalid):
    """Import items from a CSV, TSV, JSONL or JSON file."""
    from .web import media

    db = get_db()
    try:
        proj = store.get_project(db, project)
        options = ingest.ImportOptions(text_column, ingest.optional_column(id_column),
                                       ingest.optional_column(label_column), image_column,
                                       media_dir=media.project_dir(current_app.config["MEDIA_DIR"], proj["id"]),
                                       cli=True, skip_invalid=skip_invalid)
        result = import_file(db, proj, file, options, fmt)
    except AssayError as exc:
        _fail(exc)
    click.echo(result.summary())
    if result.imported:
        _retrain_after_import(proj)


def _retrain_after_import(project: dict) -> None:
    """Have the new items featurized and any seed labels trained on, as an upload over HTTP does.

    This command wrote into the database, but the retrains are run by the servers: with external
    workers a job row is the request (any worker takes it); else each server running on this
    database is told, and a server started later catches up when it starts (_catch_up).
    """
    from .running import ask, live_servers

    retrain = current_app.extensions["assay.retrain"]
    if retrain.external:
        retrain.request(project["id"])
        return
    for server in live_servers(current_app.instance_path, current_app.config["DATABASE"]):
        ask(server, "imported", {"project_id": project["id"]})


@click.command("export")
@click.argument("project")
@click.option("--format", "fmt", type=click.Choice(export_mod.FORMATS), default="jsonl", show_default=True,
              help="parquet: a Parquet file; hf: a folder datasets.load_from_disk opens (needs -o); "
                   "labelstudio: Label Studio's task JSON.")
@click.option("-o", "--output", type=click.Path(writable=True), default=None,
              help="File to write (default: standard output); for hf, a new folder.")
@click.option("--all-annotations", is_flag=True, help="One row per answer instead of one per item.")
@click.option("--provenance", is_flag=True,
              help="Add who answered and what picked each item: strategy, score, model version, selection "
                   "probability, labels at serving, and every answer.")
@with_appcontext
def export_command(project, fmt, output, all_annotations, provenance):
    """Export the labeled set, one row per labeled item."""
    from .domain import columnar, labelstudio

    db = get_db()
    try:
        proj = store.get_project(db, project)
        if fmt == "hf" and output is None:
            raise BadRequest("--format hf writes a folder: give it with -o FOLDER")
        if fmt == "labelstudio" and all_annotations:
            raise BadRequest("a Label Studio task already holds every answer: drop --all-annotations")
        if output is not None and fmt != "hf" and os.path.isdir(output):
            raise BadRequest(f"{output} is a folder: give a file to write")
        columns = columnar.data_columns(db, proj["id"]) if fmt in ("parquet", "hf") else ()
    except AssayError as exc:
        _fail(exc)
    keys = store.export_data_keys(db, proj["id"]) if fmt == "csv" else ()
    written = [0]

    def counted(records):
        for record in records:
            written[0] += 1
            yield record

    records = counted(export_mod.iter_export(db, proj["id"], every_annotation=all_annotations,
                                             provenance=provenance))
    try:
        if fmt == "hf":
            columnar.write_hf(output, proj, records, columns, provenance)
        elif fmt == "parquet":
            columnar.write_parquet(output if output is not None else sys.stdout.buffer, proj, records, columns,
                                   provenance)
        else:
            chunks = labelstudio.stream(proj, records) if fmt == "labelstudio" else \
                export_mod.stream(proj, records, fmt, keys, provenance)
            if output is None:
                for chunk in chunks:
                    sys.stdout.write(chunk)
            else:
                with open(output, "w", encoding="utf-8", newline="") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
    except AssayError as exc:
        _fail(exc)
    # An empty project gives an empty file: say so, rather than leave a 0-byte file to puzzle over.
    n = written[0]
    noun = "task" if fmt == "labelstudio" else "row"
    click.echo(f"wrote {n} {noun}{'' if n == 1 else 's'} to {output or 'standard output'}"
               + (" (nothing is labeled yet)" if n == 0 else ""), err=True)


@click.command("delete-project")
@click.argument("project")
@click.option("--yes", is_flag=True, help="Do not ask to type the project's name.")
@with_appcontext
def delete_project_command(project, yes):
    """Delete a project with its items and every label (export first what you need)."""
    from .domain import projects

    db = get_db()
    try:
        proj = store.get_project(db, project)
    except AssayError as exc:
        _fail(exc)
    if not yes:
        counts = store.counts(db, proj["id"])
        typed = click.prompt(f"project {proj['name']} has {counts['total']} items and {counts['labeled']} labeled; "
                             "type its name to delete it for good", default="", show_default=False)
        if typed != proj["name"]:
            raise click.ClickException("the name did not match; nothing was deleted")
    app = current_app._get_current_object()
    out = projects.delete(db, proj, cache_root=app.config["CACHE_DIR"], media_root=app.config["MEDIA_DIR"])
    click.echo(f"deleted project {out['deleted']}: {out['items']} items, {out['labeled']} of them labeled")


@click.command("delete-items")
@click.argument("project")
@click.argument("item_ids", nargs=-1, required=True, type=int)
@click.option("--with-labels", is_flag=True, help="Also delete items that carry labels (their labels go too).")
@with_appcontext
def delete_items_command(project, item_ids, with_labels):
    """Delete items by id (the "item_id" of export); all or none."""
    from .domain import projects

    db = get_db()
    try:
        proj = store.get_project(db, project)
        out = projects.delete_items(db, proj, list(item_ids), with_labels=with_labels,
                                    cache_root=current_app.config["CACHE_DIR"])
    except AssayError as exc:
        _fail(exc)
    click.echo(f"deleted {out['deleted']} items ({out['labeled']} of them labeled)")


@click.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(store.ROLES), default="annotator", show_default=True)
@click.option("--project", default=None, help="Project name or id; without it the role holds on every project.")
@click.option("--password", default=None, help="For browser login; prompted for when omitted (empty: tokens only).")
@with_appcontext
def create_user_command(name, role, project, password):
    """Create a user (or give an existing one a role on a project)."""
    from .web import auth

    db = get_db()
    try:
        auth.valid_name(name)
        project_id = store.get_project(db, project)["id"] if project else None
        try:
            user = store.get_user(db, name)
        except AssayError:
            if password is None:
                password = click.prompt("password (empty for API tokens only)", hide_input=True,
                                        confirmation_prompt=True, default="", show_default=False)
            user_id = store.create_user(db, name, auth.hash_password(password) if password else None)
            user = store.get_user(db, user_id)
        else:
            if password:
                store.set_password(db, user["id"], auth.hash_password(password))
        store.grant(db, user["id"], project_id, role)
    except AssayError as exc:
        _fail(exc)
    where = f"project {project}" if project else "every project"
    click.echo(f"{name} is {role} on {where}")


@click.command("create-token")
@click.argument("name")
@with_appcontext
def create_token_command(name):
    """Print a new API token for a user (shown once; only its hash is stored)."""
    from .web import auth

    db = get_db()
    user = _user(name)
    token = auth.new_token()
    store.add_token(db, user["id"], auth.hash_token(token), token[:12])
    click.echo(token)


@click.command("revoke-token")
@click.argument("token_or_prefix")
@with_appcontext
def revoke_token_command(token_or_prefix):
    """Revoke an API token, given the token itself or the first 12 characters `list-tokens` shows."""
    db = get_db()
    prefix = token_or_prefix[:12]
    n = store.revoke_token(db, prefix=prefix)
    if n == 0:
        raise click.ClickException(f"no live token starts with {prefix!r}")
    click.echo(f"revoked {n} token(s) starting {prefix}")


@click.command("list-tokens")
@click.argument("name")
@with_appcontext
def list_tokens_command(name):
    """List a user's tokens (prefix, created, revoked)."""
    db = get_db()
    user = _user(name)
    for t in store.list_tokens(db, user["id"]):
        click.echo(f"{t['prefix']}  created {t['created_at']}  " + (f"revoked {t['revoked_at']}" if t["revoked_at"] else "live"))


@click.command("end-sessions")
@click.argument("name")
@with_appcontext
def end_sessions_command(name):
    """Log a user out of every browser (a lost laptop, a departed annotator); their API tokens stay."""
    db = get_db()
    user = _user(name)
    store.end_sessions(db, user["id"])
    click.echo(f"ended {name}'s login sessions; `assay revoke-token` stops their API tokens")


def serve_app(app, host: str, port: int, threads: int = 8):
    serve_forever(app, listen(app, host, port, threads), host, port)


def listen(app, host: str, port: int, threads: int = 8):
    """A waitress server bound to host:port; a one-line ClickException when it cannot be."""
    if not is_loopback(host) and not app.config.get("AUTH"):
        raise click.ClickException(
            f"refusing to listen on {host}: authentication is off. Set ASSAY_AUTH=true (and create users "
            "with `assay create-user`) to serve beyond this machine, or bind to 127.0.0.1.")
    from waitress.server import create_server

    from .web.bodylimit import limit_bodies

    # No body beyond the largest route's limit is read at all; each route's own limit is applied as soon as
    # a request's head is in (assay.web.bodylimit).
    limits = [int(app.config[key]) for key in ("MAX_CONTENT_LENGTH", "MAX_JSON_BYTES") if app.config.get(key)]
    largest = {"max_request_body_size": max(limits) + 1} if limits else {}
    try:
        _probe_port(host, port)  # before create_server, which leaves its worker threads behind when it fails
        server = create_server(app, host=host, port=port, threads=threads, ident="assay", channel_timeout=60,
                               clear_untrusted_proxy_headers=True, **largest)
    except OSError as exc:
        raise click.ClickException(_cannot_listen(host, port, exc)) from None
    limit_bodies(server, app)
    return server


def serve_forever(app, server, host: str, port: int, then: str = "") -> None:
    """Serve until Ctrl+C; ``then`` is a line printed under the address."""
    from . import services
    from .running import registered

    click.echo(f"Assay is serving on http://{host}:{port}/  (Ctrl+C stops it)")
    if then:
        click.echo(then)
    services.start(app)  # the webhook deliveries the last run left pending
    # The worker's imports (seconds) are done in the background now, not when the first labels arrive.
    app.extensions["assay.retrain"].warm()
    # A pool the last run left half featurized goes on where it stopped (its steps are cached).
    app.extensions["assay.retrain"].resume_featurizing()
    _catch_up(app)
    try:
        with registered(app, host, port):  # so that the CLI in another shell can ask this server
            server.run()
    finally:
        app.extensions["assay.retrain"].shutdown()


def _catch_up(app) -> None:
    """Retrain the projects that items or labels reached while no server ran (`assay import` before `assay
    serve`, as the README's tour goes): those without a model, or with retrain_every labels beyond it.
    A running server hears of an import from the command itself (_retrain_after_import)."""
    retrain = app.extensions["assay.retrain"]
    if retrain.external:
        return  # the command queued the job itself
    db = app.extensions["assay.db"]
    for project in store.list_projects(db):
        retrain.labels_arrived(project)


def _probe_port(host: str, port: int) -> None:
    """Bind and release host:port as waitress will (SO_REUSEADDR on every address), or raise OSError."""
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE):
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        free = _free_port_near(host, port)
        hint = f"try --port {free}" if free else "pick another port with --port"
        return f"port {port} on {host} is taken (is Assay already running?); stop that program or {hint}"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port}; ports below 1024 need root: try --port 5000"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port"


def _free_port_near(host: str, port: int, tries: int = 20) -> int | None:
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        try:
            _probe_port(host, candidate)
        except OSError:
            continue
        return candidate
    return None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--allow-model", multiple=True, metavar="PKG.MOD:FACTORY",
              help="An import path web users may name as a project's model (repeatable; adds to ASSAY_MODELS).")
@click.option("--allow-featurizer", multiple=True, metavar="PKG.MOD:FACTORY",
              help="An import path web users may name as a featurizer (repeatable; adds to ASSAY_FEATURIZERS).")
@with_appcontext
def serve_command(host, port, threads, allow_model, allow_featurizer):
    """Run the production (waitress) server."""
    app = current_app._get_current_object()
    allow(app, allow_model, allow_featurizer)
    serve_app(app, host, port, threads)


def allow(app, models=(), featurizers=()) -> None:
    """Register import paths that projects created over HTTP may name (the operator's choice)."""
    from .plugins import parse_list

    for key, extra in (("MODELS", models), ("FEATURIZERS", featurizers)):
        if extra:
            app.config[key] = sorted(parse_list(app.config.get(key)) | parse_list(extra))


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Only create the project and import the data.")
@with_appcontext
def demo_command(host, port, no_serve):
    """Create the SMS-spam demo project (shipped data, CC BY 4.0) and serve it."""
    from .domain import projects

    app = current_app._get_current_object()
    # Take the port first, so that a busy one is reported before the import and the first retrain.
    server = None if no_serve else listen(app, host, port)
    db = get_db()
    name = "sms-spam-demo"
    try:
        project = store.get_project(db, name)
        click.echo(f"project {name} exists (id {project['id']})")
    except AssayError:
        project_id = projects.create(db, {"name": name, "labels": ["ham", "spam"], "strategy": "default",
                                          "model": "logreg", "batch_size": 10, "retrain_every": 10})
        project = store.get_project(db, project_id)
        # Texts only: the demo is for labeling, so the collection's own labels stay out of the items.
        options = ingest.ImportOptions(text_column="SMS", id_column=None, label_column=None)
        records = [{"SMS": r["SMS"]} for r in read_records(project, os.path.join(DEMO_DIR, "sms_spam.tsv"),
                                                             options, "tsv")]
        result = ingest.import_items(db, project, records, options)
        click.echo(f"created project {name} (id {project_id}) with {result.imported} SMS messages "
                   "(SMS Spam Collection, Almeida & Gomez Hidalgo, CC BY 4.0)")
        if result.duplicates:
            click.echo(f"{result.duplicates} of them repeat another message word for word: each text is served "
                       "once, and its label goes to every copy")
    app.extensions["assay.retrain"].request(project["id"])
    if no_serve:
        app.extensions["assay.retrain"].wait_idle(300)
        return
    serve_forever(app, server, host, port, then=f"label at http://{host}:{port}/projects/{project['id']}/annotate")


@click.command("worker")
@click.option("--once", is_flag=True, help="Run at most one waiting job, then exit.")
@click.option("--poll", default=2.0, show_default=True, type=float, help="Seconds between looks for a job when idle.")
@with_appcontext
def worker_command(once, poll):
    """Retrain: claim the jobs ASSAY_WORKERS=external queues in the database, one at a time.

    Run one or more, on this machine or others sharing the database. SIGTERM or Ctrl+C hands the job in
    hand back at once; a killed worker's job is retaken by another after ASSAY_JOB_LEASE seconds.
    """
    import signal

    from . import services
    from .learning.jobqueue import JobWorker, Stopping

    app = current_app._get_current_object()
    worker = JobWorker(app.extensions["assay.retrain"], lease=float(app.config["JOB_LEASE"]),
                       max_attempts=int(app.config["JOB_ATTEMPTS"]))
    stopping = []

    def stop(signum, frame):
        if not stopping:  # a second signal must not interrupt handing the job back
            stopping.append(signum)
            raise Stopping()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    # The retrain child imports numpy, scikit-learn and the models before the first job comes.
    app.extensions["assay.retrain"].warm(for_jobs=True)
    services.start(app)  # the webhook deliveries the last run left pending; the jobs' own events wake it too
    click.echo(f"assay worker {worker.name} takes jobs from {redacted(app.config['DATABASE'])}")
    sender = app.extensions["assay.webhooks"]
    try:
        worker.run(poll=poll, once=once)
    except Stopping:
        click.echo("stopped")
    finally:
        app.extensions["assay.retrain"].shutdown()
        sender.shutdown()
    click.echo(f"{worker.jobs_done} job(s) run")


COMMANDS = (init_db_command, create_project_command, delete_project_command, delete_items_command,
            strategies_command, import_command, export_command,
            serve_command, demo_command, create_user_command, create_token_command, revoke_token_command,
            list_tokens_command, end_sessions_command, simulate_command, worker_command)


def init_app(app):
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app():
    from . import create_app, services

    # Only the commands that serve pages build the web layer (assay.create_app's web=False).
    ctx = click.get_current_context(silent=True)
    name = ctx.command.name if ctx is not None else None
    app = create_app(web=name not in {c.name for c in COMMANDS} - {"serve", "demo"})
    services.open_database(app)  # every command, before it runs: the schema, and imports a dead process left
    return app


def _hidden(params: list) -> list:
    """Copies of ``params`` left out of --help.

    FlaskGroup always adds --env-file, --app and --debug. Assay names its own app, so
    they only puzzle a newcomer; they stay (hidden) because their callbacks load .env
    files. Copies, since Flask shares these option objects with every FlaskGroup.
    """
    out = [copy.copy(p) for p in params]
    for p in out:
        p.hidden = True
    return out


class AssayGroup(FlaskGroup):
    """The commands live on the group itself, so that listing them (`assay --help`) builds no app.

    FlaskGroup builds the app to ask it for commands, which opens the database, migrates it and
    imports the whole web layer: a second of CPU for a help text. A command still builds the app
    when it runs (with_appcontext).
    """

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return sorted(self.commands)


cli = AssayGroup(create_app=_create_app, add_default_commands=False, add_version_option=False,
                 help="Assay: active-learning annotation server.")
cli.params = _hidden(cli.params)
for _command in COMMANDS:
    cli.add_command(_command)


def main():
    from .errors import ConfigurationError

    try:
        cli(prog_name="assay")
    except ConfigurationError as exc:  # before any command runs: say what to set, not a traceback
        raise SystemExit(f"Error: {exc}") from None


if __name__ == "__main__":
    main()

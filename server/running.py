"""Which `assay serve` processes run on this instance folder, so that the CLI can ask them.

While it serves, each ``assay serve`` (and ``assay demo``) writes ``servers/<pid>.json`` in the instance
folder: its address, its database and a random token, readable by the file's owner only. A command
run by the operator in another shell (``assay create-project --model pkg.mod:factory``) reads it and asks
the server, with the token, whether the server's own Python can import that module: the server
imports the model in its retrain worker, with its own ``sys.path``, which a later ``export
PYTHONPATH=...`` in another shell does not change. ``assay import`` tells them of the items and labels
it wrote, so that they retrain as after an upload over HTTP. The token is what makes the question the
operator's: only whoever can read the instance folder can ask it (SECURITY.md).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import urllib.request

HEADER = "X-Assay-Operator"


def _folder(instance_path: str) -> str:
    return os.path.join(instance_path, "servers")


@contextlib.contextmanager
def registered(app, host: str, port: int):
    """Record this server in the instance folder while the block runs (the whole of serve_forever)."""
    token = secrets.token_urlsafe(32)
    app.extensions["assay.operator_token"] = token
    folder = _folder(app.instance_path)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{os.getpid()}.json")
    url_host = f"[{host}]" if ":" in host else host
    record = {"pid": os.getpid(), "url": f"http://{url_host}:{port}", "database": str(app.config["DATABASE"]),
              "token": token}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    try:
        yield record
    finally:
        app.extensions.pop("assay.operator_token", None)
        with contextlib.suppress(OSError):
            os.remove(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_servers(instance_path: str, database: str) -> list[dict]:
    """The servers recorded in the instance folder that still run and use ``database``."""
    folder = _folder(instance_path)
    out = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return out
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
            continue
        if not _alive(record["pid"]):
            # A server killed without its cleanup: its record is stale.
            with contextlib.suppress(OSError):
                os.remove(path)
            continue
        if record.get("database") == str(database):
            out.append(record)
    return out


def ask(server: dict, route: str, body: dict, timeout: float = 5.0) -> dict | None:
    """POST ``body`` to ``server``'s /api/operator/``route`` with its token: the answer, or None if it gave none."""
    req = urllib.request.Request(f"{server['url']}/api/operator/{route}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json", HEADER: server["token"]})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            answer = json.load(res)
    except (OSError, ValueError):  # urllib's HTTPError and URLError are OSErrors
        return None
    return answer if isinstance(answer, dict) else None


def ask_importable(server: dict, kind: str, spec: str) -> str | None:
    """Why ``server`` cannot import ``spec``'s module; None if it can, or if it did not answer (no news)."""
    answer = ask(server, "importable", {"kind": kind, "spec": spec})
    if answer is None or answer.get("importable"):
        return None
    return str(answer.get("error") or "cannot import it")

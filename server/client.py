"""A Python client for Assay's JSON API: ``from assay import Client``.

It talks HTTP only, through the standard library (urllib), so a notebook or a labeling script needs
nothing but this package, and never a running app in its own process. pandas is imported only when a
DataFrame is asked for. The server's refusals come back as exceptions carrying its message and
status: ``NotFound`` for a 404, ``BadRequest`` for a 400 and so on, each an ``ApiError`` and also the
``assay.errors`` class of that status, so ``except assay.errors.NotFound`` catches both sides alike.
"""
from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable, Iterator, Mapping

from assay import errors

DEFAULT_URL = "http://127.0.0.1:5000"
MAX_RETRY_WAIT = 60.0  # seconds; a Retry-After beyond this is the server asking us to give up for now


class ApiError(errors.AssayError):
    """An error answer from the server: ``message`` is the server's own, ``status`` its HTTP status."""

    def __init__(self, message: str, *, status: int, method: str = "", url: str = "", details=None):
        super().__init__(message, status=status, details=details)
        self.method = method
        self.url = url


class BadRequest(ApiError, errors.BadRequest):
    pass


class Unauthorized(ApiError, errors.Unauthorized):
    pass


class Forbidden(ApiError, errors.Forbidden):
    pass


class NotFound(ApiError, errors.NotFound):
    pass


class Conflict(ApiError, errors.Conflict):
    pass


class PayloadTooLarge(ApiError, errors.PayloadTooLarge):
    pass


class UnsupportedMediaType(ApiError, errors.UnsupportedMediaType):
    pass


class MisdirectedRequest(ApiError, errors.MisdirectedRequest):
    pass


class TooManyRequests(ApiError, errors.TooManyRequests):
    pass


class ServerError(ApiError):
    """A 5xx: the server failed; its log has the details."""


ERRORS = {cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                                      UnsupportedMediaType, MisdirectedRequest, TooManyRequests)}


def error_for(status: int, message: str, *, method: str = "", url: str = "", details=None) -> ApiError:
    cls = ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(message, status=status, method=method, url=url, details=details)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a redirect with the Authorization header, to whatever host it names; the API never
    # redirects, so one means a wrong base URL (http behind an https proxy, say), which we report instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _jsonable(value):
    """json.dumps' fallback for the values a list of dicts built with numpy or datetime holds."""
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable; items hold strings, numbers, "
                    "booleans, null, lists and objects")


def _records(items) -> list[dict]:
    """The JSON list the import route takes, from a DataFrame or an iterable of mappings."""
    if hasattr(items, "to_json") and hasattr(items, "columns"):
        # pandas' own encoder: NaN and NaT become null, numpy scalars numbers, timestamps ISO strings.
        # The index is not sent (reset_index() first to send it as a column).
        return json.loads(items.to_json(orient="records", date_format="iso", force_ascii=False))
    if isinstance(items, (str, bytes, Mapping)):
        raise TypeError("items must be a pandas DataFrame or a list of dicts (one per item)")
    records = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise TypeError(f"item {n} is a {type(item).__name__}; items must be dicts like {{\"text\": \"...\"}}")
        records.append(dict(item))
    return records


def _flat(row: dict) -> dict:
    # The item's fields become data.<field> columns, the names the CSV export gives them, so an item field
    # called "label" never passes for the answer.
    out = {}
    for key, value in row.items():
        if key == "data" and isinstance(value, dict):
            out.update({f"data.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _columns(rows: list[dict]) -> list[str]:
    """The CSV export's column order: export's own fields before the item's, every data.<field> any row
    has (in the order they first appear), then export's own fields after them."""
    before: dict[str, None] = {}
    fields: dict[str, None] = {}
    after: dict[str, None] = {}
    for row in rows:
        group = before
        for key, value in row.items():
            if key == "data" and isinstance(value, dict):
                fields.update(dict.fromkeys(f"data.{k}" for k in value))
                group = after
            elif key not in before and key not in after:
                group[key] = None
    return [*before, *fields, *after]


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("export_dataframe needs pandas (pip install pandas); Client.export returns the same rows "
                          "as a list of dicts without it") from None
    return pandas


def _on_this_machine(address: str) -> bool:
    """Whether ``host[:port]`` (no scheme) names this machine by itself: localhost or a loopback address."""
    host = urllib.parse.urlsplit("//" + address).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Client:
    """The JSON API of one Assay server, as one user.

    ``Client("http://127.0.0.1:5000")`` with accounts off (a local server); with ``ASSAY_AUTH`` on,
    ``Client(url, token="assay_...")`` (``assay create-token NAME`` prints one). ``annotator`` names who
    labels when accounts are off (the ``X-Assay-Annotator`` header), so one script can act as several
    annotators. A project is given by its id, its name, or the dict ``project()`` returns; an item by
    its id or the dict ``queue()`` returned. Refusals raise ``ApiError`` subclasses; a 429 is retried
    after the wait the server names, up to ``retries`` times.
    """

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, *, annotator: str | None = None,
                 timeout: float = 60.0, retries: int = 3):
        url = url.strip().rstrip("/")
        if "://" not in url:
            # Without a scheme, plain http is a guess; with a token it would send the token in clear over
            # the network, so only this machine gets the guess.
            if token and not _on_this_machine(url):
                raise ValueError(f"Client({url!r}, token=...) needs a scheme: write https://{url} (a token over "
                                 f"plain http travels in clear), or http://{url} if that is really meant")
            url = "http://" + url
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.headers = {"Accept": "application/json", "User-Agent": "assay-client"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if annotator:
            self.headers["X-Assay-Annotator"] = annotator

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- projects ------------------------------------------------------------
    def projects(self) -> list[dict]:
        """Every project this user may see."""
        return self._json("GET", "/api/projects")

    def project(self, project) -> dict:
        """One project: its settings, and how many items it has and how many are labeled."""
        return self._json("GET", f"/api/projects/{self.project_id(project)}")

    def create_project(self, name: str, labels: Iterable[str], **settings) -> dict:
        """A new project; ``settings`` are the API's (strategy, model, batch_size, multi_label, ...)."""
        created = self._json("POST", "/api/projects", {"name": name, "labels": _names(labels), **settings})
        return self.project(created["id"])

    def update_project(self, project, **changes) -> dict:
        """Change settings (``PATCH``): ``update_project(p, target_accuracy=0.9)``; returns the project."""
        return self._json("PATCH", f"/api/projects/{self.project_id(project)}", changes)

    def project_id(self, project) -> int:
        """The id of a project given by id, name (one request to look it up) or dict."""
        if isinstance(project, Mapping):
            project = project.get("id")
        if isinstance(project, bool) or not isinstance(project, (int, str)):
            raise TypeError(f"a project is its id, its name or the dict project() returns, not {project!r}")
        if isinstance(project, int):
            return project
        if project.isdigit():
            return int(project)
        for candidate in self.projects():
            if candidate["name"] == project:
                return candidate["id"]
        raise NotFound(f"no project named {project!r} that this user can see; Client.projects() lists them",
                       status=404, method="GET", url=self.url + "/api/projects")

    # -- items in, labels out ------------------------------------------------
    def import_items(self, project, items, *, text_column: str | None = None, id_column: str | None = None,
                     label_column: str | None = None, image_column: str | None = None) -> dict:
        """Import a DataFrame or a list of dicts, one row per item, all or nothing: ``{"imported", "skipped"}``.

        The column options are the API's: None leaves the server's default (``text``, ``id``, no label
        column, ``image``); ``id_column=""`` or ``"none"`` means no id column. A label column's values
        become a pre-labeled seed set.
        """
        options = {"text_column": text_column, "id_column": id_column, "label_column": label_column,
                   "image_column": image_column}
        query = {k: v for k, v in options.items() if v is not None}
        return self._json("POST", f"/api/projects/{self.project_id(project)}/items", _records(items), query=query)

    def queue(self, project, n: int = 5) -> list[dict]:
        """The next ``n`` items for this annotator, best first, leased to them: ``[{"id", "data", ...}]``."""
        return self._json("GET", f"/api/projects/{self.project_id(project)}/queue", query={"n": n})

    def label(self, project, item, label: str, **extra) -> dict:
        """Answer an item with one label. ``extra``: ``duration_ms``, ``idempotency_key``."""
        return self._annotate(project, item, {"label": label}, extra)

    def labels(self, project, item, labels: Iterable[str], **extra) -> dict:
        """Answer an item of a multi-label project with its labels (an empty list: none apply)."""
        return self._annotate(project, item, {"labels": _names(labels)}, extra)

    def skip(self, project, item, **extra) -> dict:
        return self._annotate(project, item, {"skip": True}, extra)

    def undo(self, project, item) -> dict:
        """Take back this annotator's answer on the item; returns the answer undone."""
        path = f"/api/projects/{self.project_id(project)}/annotations/{_item_id(item)}"
        return self._json("DELETE", path)["undone"]

    def stats(self, project) -> dict:
        """Progress, the model versions, and the accuracy estimate with the stop signal (``quality``)."""
        return self._json("GET", f"/api/projects/{self.project_id(project)}/stats")

    def export(self, project, *, annotations: str = "resolved") -> list[dict]:
        """The labeled set as the JSONL export has it: one dict per labeled item, its fields under ``data``.

        ``annotations="all"`` gives one row per answer instead (every annotator's).
        """
        return list(self.iter_export(project, annotations=annotations))

    def iter_export(self, project, *, annotations: str = "resolved") -> Iterator[dict]:
        """``export`` row by row, as the server streams it."""
        path = f"/api/projects/{self.project_id(project)}/export"
        with self._open("GET", path, query={"format": "jsonl", "annotations": annotations}) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def export_dataframe(self, project, *, annotations: str = "resolved"):
        """``export`` as a pandas DataFrame, the item's fields as ``data.<field>`` columns (as in the CSV export)."""
        pandas = _pandas()
        project_id = self.project_id(project)
        rows = list(self.iter_export(project_id, annotations=annotations))
        if rows:
            columns = _columns(rows)
        else:
            label = "labels" if self.project(project_id)["multi_label"] else "label"
            columns = ["id", "item_id", label, "annotator", "timestamp"]
        return pandas.DataFrame.from_records([_flat(row) for row in rows], columns=columns)

    # -- HTTP ----------------------------------------------------------------
    def _annotate(self, project, item, answer: dict, extra: dict) -> dict:
        unknown = set(extra) - {"duration_ms", "idempotency_key"}
        if unknown:
            raise TypeError(f"unexpected arguments {sorted(unknown)}; an answer takes duration_ms and idempotency_key")
        body = {"item_id": _item_id(item), **answer, **{k: v for k, v in extra.items() if v is not None}}
        return self._json("POST", f"/api/projects/{self.project_id(project)}/annotations", body)

    def _json(self, method: str, path: str, body: Any = None, *, query: dict | None = None):
        with self._open(method, path, body, query=query) as response:
            return json.loads(response.read())

    def _open(self, method: str, path: str, body: Any = None, *, query: dict | None = None):
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body, default=_jsonable, allow_nan=False, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                return _OPENER.open(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                error = _error(exc, method, url)
                wait = _retry_after(exc)
                if error.status != 429 or attempt == self.retries or wait > MAX_RETRY_WAIT:
                    raise error from None
                time.sleep(wait)
            except urllib.error.URLError as exc:
                raise ConnectionError(f"could not reach the Assay server at {self.url} ({exc.reason}); "
                                      "is `assay serve` running there?") from None
        raise AssertionError("unreachable")


def _names(labels: Iterable[str]) -> list[str]:
    # list("bug") would send three labels, b, u and g.
    if isinstance(labels, str):
        raise TypeError(f"labels are a list of names, like [{labels!r}], not the string {labels!r}")
    return list(labels)


def _item_id(item) -> int:
    if isinstance(item, Mapping):
        item = item.get("id")
    if isinstance(item, bool) or not isinstance(item, int):
        raise TypeError(f"an item is its id or the dict queue() returned, not {item!r}")
    return item


def _retry_after(exc: urllib.error.HTTPError) -> float:
    try:
        return max(float(exc.headers.get("Retry-After", 1)), 0.0)
    except (TypeError, ValueError):
        return 1.0


def _error(exc: urllib.error.HTTPError, method: str, url: str) -> ApiError:
    """The server's answer as an exception: its JSON {"error", "status"} when it sent one."""
    raw = exc.read()
    exc.close()
    message, details = None, None
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            message, details = parsed["error"], parsed.get("details")
    except ValueError:
        pass
    if message is None and 300 <= exc.code < 400:
        message = (f"the server redirected {method} {url} to {exc.headers.get('Location')}; give Client the "
                   "server's own address (the scheme and host it answers on)")
    if message is None:
        text = raw.decode("utf-8", "replace").strip()
        message = f"{exc.code} {exc.reason} from {method} {url}" + (f": {text[:300]}" if text else "")
    return error_for(exc.code, message, method=method, url=url, details=details)

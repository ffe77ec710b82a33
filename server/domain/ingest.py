"""Reading import files (CSV, TSV, JSONL, a JSON list) into validated item rows, and importing them.

Everything is parsed and checked before anything is written, so a bad file
changes nothing. ``import_items`` is the one import path: the API, the CLI
and the demo all go through it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import BinaryIO

from assay import store
from assay.errors import AssayError, BadRequest, PayloadTooLarge

from . import labels

FORMATS = ("csv", "tsv", "jsonl", "json")
# Columns that hold bookkeeping, never item content.
_LABEL_SPLIT = "|"
TOO_DEEP = "{what} is nested too deeply to read; items are flat objects like {{\"text\": \"...\"}}"


def loads(text: str, what: str):
    """json.loads whose RecursionError (JSON nested thousands deep) is the sender's mistake, not ours."""
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest(TOO_DEEP.format(what=what)) from None


@dataclass
class ImportOptions:
    text_column: str = "text"
    id_column: str | None = "id"
    # Off unless asked for: many data sets (AG News, ...) have a "label" column of codes, not the project's labels.
    label_column: str | None = None
    image_column: str = "image"
    max_item_bytes: int | None = None
    # Image projects: every image path must name a file inside this folder (the project's media store).
    media_dir: str | None = None
    # Errors name the options as the caller typed them: --text-column on the command line, text_column over HTTP.
    cli: bool = False
    # Leave out the rows that cannot be imported (an empty text, an unknown label, ...) and list them, instead
    # of refusing the file.
    skip_invalid: bool = False

    def option(self, name: str) -> str:
        return "--" + name.replace("_", "-") if self.cli else name

    def flag(self, name: str) -> str:
        return "--" + name.replace("_", "-") if self.cli else f"{name}=true"


def optional_column(value: str | None, default: str | None = None) -> str | None:
    """A column option: not given means the default; empty or "none" means no such column."""
    if value is None:
        return default
    value = value.strip()
    return None if value.lower() in ("", "none") else value


def with_folder_labels(options: ImportOptions, records: list[dict]) -> ImportOptions:
    """Images sorted into a folder per label arrive labeled: the folders are the user asking for it."""
    if options.label_column is None and any("label" in r for r in records):
        return dataclasses.replace(options, label_column="label")
    return options


def guess_format(filename: str | None, head: bytes) -> str:
    name = (filename or "").lower()
    for ext, fmt in ((".tsv", "tsv"), (".tab", "tsv"), (".csv", "csv"), (".jsonl", "jsonl"),
                     (".ndjson", "jsonl"), (".json", "json"), (".txt", "tsv")):
        if name.endswith(ext):
            return fmt
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    first_line = head.split(b"\n", 1)[0]
    return "tsv" if first_line.count(b"\t") > first_line.count(b",") else "csv"


def _binary(source) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source


_TABLES = "save it as CSV (or export it to CSV or JSONL) and import that"
_IMAGES = "images go into an image project, as image files or a zip or folder of them"
# (magic bytes at the start, what the file is, what to do): checked before decoding, so a spreadsheet or a
# picture gets a useful answer instead of "not UTF-8 (bad byte at position 0)".
_BINARY = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", _IMAGES),
    (b"\xff\xd8\xff", "a JPEG image", _IMAGES),
    (b"GIF87a", "a GIF image", _IMAGES),
    (b"GIF89a", "a GIF image", _IMAGES),
    (b"%PDF-", "a PDF document", "copy its text into a CSV, TSV or JSONL file with one item per row"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls) or another old Office file", _TABLES),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it (gunzip) and import the file inside"),
    (b"PAR1", "a Parquet file", "export it to CSV or JSONL first (e.g. pandas.read_parquet(f).to_csv(...))"),
    (b"SQLite format 3\x00", "an SQLite database", "export a table to CSV first (sqlite3 -header -csv DB 'select ...')"),
    (b"\xff\xfe", "UTF-16 text", "re-save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "re-save it as UTF-8"),
)
_ZIPPED = ((".xlsx", b"xl/", "an Excel workbook (.xlsx)", _TABLES),
           (".ods", b"opendocument.spreadsheet", "a spreadsheet (.ods)", _TABLES),
           (".docx", b"word/", "a Word document (.docx)", "copy its text into a CSV, TSV or JSONL file"),
           ("", b"", "a zip archive", "unzip it and import the file inside; zips of images go into an image project"))


def refuse_binary(head: bytes, filename: str | None = None) -> None:
    """Raise BadRequest naming the format when the file's first bytes show it is not text."""
    for magic, what, todo in _BINARY:
        if head.startswith(magic):
            raise BadRequest(f"this is {what}, not CSV, TSV, JSONL or JSON; {todo}")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        name = (filename or "").lower()
        for ext, marker, what, todo in _ZIPPED:
            if (ext and name.endswith(ext)) or marker in head:
                raise BadRequest(f"this is {what}, not CSV, TSV, JSONL or JSON; {todo}")


def _check_head(raw, filename: str | None) -> None:
    if isinstance(raw, (bytes, bytearray)):
        refuse_binary(bytes(raw[:4096]), filename)
        return
    if raw.seekable():
        where = raw.tell()
        head = raw.read(4096)
        raw.seek(where)
        refuse_binary(head, filename)


def parse_records(source: bytes | BinaryIO, fmt: str, filename: str | None = None) -> list[dict]:
    """Rows of a file (bytes, or a binary file read line by line) as dicts of column -> value.

    Raises BadRequest with the line at fault.
    """
    if fmt not in FORMATS:
        raise BadRequest(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    _check_head(source, filename)
    text = io.TextIOWrapper(_binary(source), encoding="utf-8-sig", newline="")
    try:
        if fmt == "json":
            return _parse_json(text.read())
        if fmt == "jsonl":
            return _parse_jsonl(text)
        return _parse_table(text, fmt)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the file is not UTF-8 ({exc.reason}); re-save it as UTF-8 and import again") from None
    finally:
        text.detach()  # the caller owns the file


def _parse_json(text: str) -> list[dict]:
    # A JSON list is one document: the json module has no incremental parser, so this one is read whole.
    if not text.strip():
        raise BadRequest("the file is empty")
    try:
        data = loads(text, "the JSON file")
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    return _as_records(data)


def _parse_jsonl(lines) -> list[dict]:
    records = []
    for lineno, line in enumerate(store.politely(lines), 1):
        if not line.strip():
            continue
        try:
            obj = loads(line, f"line {lineno}")
        except json.JSONDecodeError as exc:
            raise BadRequest(f"malformed JSON on line {lineno}: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise BadRequest(f"line {lineno} is not a JSON object; each line must be {{\"text\": ...}}")
        records.append(obj)
    if not records:
        raise BadRequest("the file is empty")
    return records


def _parse_table(lines, fmt: str) -> list[dict]:
    delimiter = "\t" if fmt == "tsv" else ","
    if fmt == "csv":
        # A "CSV" saved where the comma is the decimal mark (Excel in much of Europe) separates with
        # semicolons: a header with semicolons and no comma or tab is read so.
        lines = iter(lines)
        head = next(lines, "")
        if ";" in head and "," not in head and "\t" not in head:
            delimiter = ";"
        lines = itertools.chain([head], lines) if head else lines
    physical = _LineLog(lines)
    # Tab files (like the SMS Spam Collection) use quotes literally; CSV quotes fields. strict: a closing quote
    # must end its field, so an unclosed quote that pairs with a later field's opening quote is an error.
    reader = csv.reader(physical, delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
                        skipinitialspace=fmt == "csv", strict=fmt == "csv")
    try:
        header = next(reader)
    except StopIteration:
        raise BadRequest("the file is empty") from None
    except csv.Error as exc:
        raise BadRequest(f"cannot read the header line: {exc}") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise BadRequest(f"duplicate column names in the header: {header}")
    physical.new_record()
    records = []
    try:
        for row in store.politely(reader):
            start, spanned = physical.start, physical.new_record()
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise BadRequest(
                    f"line {reader.line_num} has {len(row)} fields but the header has {len(header)}"
                    + (" (is the file tab-separated? name it .tsv)" if delimiter == "," and len(row) == 1 else "")
                    + (f"; it starts on line {start} with a quote that runs on: {_UNCLOSED}"
                       if reader.line_num > start else "")
                )
            if reader.line_num > start and len(header) >= 3:
                _check_swallowed_rows(spanned, start, len(header), delimiter)
            records.append(dict(zip(header, row)))
    except csv.Error as exc:
        start = physical.start
        if "unexpected end of data" in str(exc):
            raise BadRequest(f"line {start} opens a quote that is never closed: the field runs to the end of "
                             f"the file. {_UNCLOSED}") from None
        if "expected after" in str(exc):
            raise BadRequest(f"line {start} opens a quoted field that does not end where it should (on line "
                             f"{reader.line_num}: {exc}). {_UNCLOSED}") from None
        raise BadRequest(f"cannot parse line {reader.line_num}: {exc}") from None
    return records


_UNCLOSED = ("A quoted field must end with a quote followed by the delimiter or the end of the line, and a quote "
             "inside it is written twice (\"\"); a quoted field may span lines, but not swallow whole rows. "
             "Close or remove the quote and import again")


class _LineLog:
    """The lines the csv reader takes, kept for the current record, so a record can be checked against them."""

    def __init__(self, lines):
        self._lines = iter(lines)
        self.record: list[str] = []
        self.start = 1  # the line the current record starts on
        self._n = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._n += 1
        if not self.record:
            self.start = self._n
        self.record.append(line)
        return line

    def new_record(self) -> list[str]:
        """The lines of the record just read; the next line starts a new one."""
        done, self.record = self.record, []
        return done


def _check_swallowed_rows(lines: list[str], start: int, width: int, delimiter: str) -> None:
    """Refuse a quoted field whose inner lines each read as a whole row: that is an unclosed quote, not prose.

    A real multi-line text rarely has a line with exactly the header's number of fields; a row swallowed by a
    missing closing quote always does. Only with three or more columns: one comma in a line of prose is common.
    """
    for offset, line in enumerate(lines[1:], 1):
        try:
            fields = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))
        except (csv.Error, StopIteration):
            continue
        if len(fields) == width:
            raise BadRequest(f"line {start} opens a quoted field that swallows line {start + offset}, which reads "
                             f"as a row of its own ({width} fields): is a closing quote missing on line {start}? "
                             + _UNCLOSED)


def _as_records(data) -> list[dict]:
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise BadRequest("expected a JSON list of objects, e.g. [{\"text\": \"...\"}]")
    for n, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise BadRequest(f"item {n} is not a JSON object; each item must be like {{\"text\": \"...\"}}")
    return data


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped: int  # already in the project (a known external id), or repeating an earlier row's id
    # (row, id, first row): rows whose id an earlier row of the same file has; counted in skipped
    repeated: list = field(default_factory=list)
    # (row, why): rows left out with skip_invalid
    invalid: list = field(default_factory=list)
    # imported items whose content an item of the project has already (exact duplicates: one of them is served,
    # and its label is given to the others); the command line's summary says so, the API's answer is unchanged
    duplicates: int = 0

    def as_dict(self) -> dict:
        out = {"imported": self.imported, "skipped": self.skipped}
        if self.repeated:
            out["repeated"] = [{"row": n, "id": i, "first_row": first} for n, i, first in self.repeated]
        if self.invalid:
            out["invalid"] = [{"row": n, "error": why} for n, why in self.invalid]
        return out

    def summary(self) -> str:
        """One line for the command line: what went in, and why anything did not."""
        present = self.skipped - len(self.repeated)
        parts = [f"imported {self.imported}", f"skipped {present} already present"]
        if self.repeated:
            parts.append(f"{len(self.repeated)} repeating an id of an earlier row ("
                         + _listed([f"row {n} repeats row {first}'s id {i!r}" for n, i, first in self.repeated])
                         + ")")
        if self.duplicates:
            parts.append(f"{self.duplicates} exact duplicate{'s' if self.duplicates != 1 else ''} of other items "
                         "(served once; a label goes to all copies)")
        if self.invalid:
            parts.append(f"left out {len(self.invalid)} invalid row{'s' if len(self.invalid) != 1 else ''} ("
                         + _listed([why for _, why in self.invalid]) + ")")
        return ", ".join(parts)


def _listed(things: list[str], most: int = 10) -> str:
    shown = "; ".join(things[:most])
    return shown + (f"; and {len(things) - most} more" if len(things) > most else "")


def records_from(source, fmt: str | None = None, filename: str | None = None) -> list[dict]:
    """The records of ``source``: a list of them as it is; bytes or a binary file parsed, in ``fmt`` or else
    the format its name and first bytes suggest."""
    if isinstance(source, list):
        return source
    if not fmt:
        if isinstance(source, (bytes, bytearray)):
            head = bytes(source[:4096])
        else:
            where = source.tell()
            head = source.read(4096)
            source.seek(where)
        fmt = guess_format(filename, head)
    return parse_records(source, fmt, filename)


def import_items(db, project: dict, source, options: ImportOptions | None = None, *, fmt: str | None = None,
                 filename: str | None = None, folder_labels: bool = False, progress=None) -> ImportResult:
    """Import items into the project from ``source`` (see ``records_from``): every row is read and checked
    against the project before the first is written, and items already present (by external id) are skipped.

    ``folder_labels``: the records come from images sorted into a folder per label (see with_folder_labels).
    ``progress``: called with the number of rows, it gives a context (like click.progressbar) whose value's
    ``update(n)`` is called as each chunk of n rows is written.
    """
    records = records_from(source, fmt, filename)
    options = options or ImportOptions()
    if folder_labels:
        options = with_folder_labels(options, records)
    rows, invalid = checked_rows(records, project, options)
    repeated = repeated_ids(rows)
    duplicates_before = store.duplicate_count(db, project["id"])
    if progress is None:
        imported, skipped = store.insert_items(db, project["id"], [row for _, row in rows],
                                               item_type=project["item_type"])
    else:
        with progress(len(rows)) as bar:
            imported, skipped = store.insert_items(db, project["id"], [row for _, row in rows], progress=bar.update,
                                                   item_type=project["item_type"])
    duplicates = max(0, store.duplicate_count(db, project["id"]) - duplicates_before)
    return ImportResult(imported, skipped, repeated, invalid, duplicates)


def repeated_ids(rows: list[tuple[int, tuple]]) -> list[tuple[int, str, int]]:
    """(row, id, first row) for each row whose external id an earlier row of the file has (the store keeps the
    first and skips the rest, as it skips ids the project has)."""
    first: dict[str, int] = {}
    out = []
    for n, (external_id, _, _) in rows:
        if external_id is None:
            continue
        if external_id in first:
            out.append((n, external_id, first[external_id]))
        else:
            first[external_id] = n
    return out


def _scalar(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value)


def to_rows(records: list[dict], project: dict, options: ImportOptions) -> list[tuple[str | None, dict, object]]:
    """(external_id, data, label-or-None) per record, validated against the project."""
    return [row for _, row in checked_rows(records, project, options)[0]]


def checked_rows(records: list[dict], project: dict,
                 options: ImportOptions) -> tuple[list[tuple[int, tuple]], list[tuple[int, str]]]:
    """(row number, (external_id, data, label-or-None)) per valid record, and (row number, why) per invalid one.

    An invalid row refuses the file, naming the first and counting the others, unless ``skip_invalid``.
    """
    if not records:
        raise BadRequest("the file has no rows")
    item_type = project["item_type"]
    columns = set().union(*(r.keys() for r in records))
    id_column = options.id_column if options.id_column in columns else None
    content_column = {"text": options.text_column, "image": options.image_column}.get(item_type)
    if content_column is not None and content_column not in columns:
        raise BadRequest(
            f"no column {content_column!r} in the file (columns: {sorted(columns)}); "
            f"set {options.option(item_type + '_column')} to the column that holds the {item_type}"
            + _delimiter_hint(columns)
        )
    label_column = options.label_column
    if label_column is not None and label_column not in columns:
        raise BadRequest(f"no column {label_column!r} in the file to read labels from (columns: {sorted(columns)}); "
                         f"set {options.option('label_column')} to the column that holds the project's labels, "
                         "or leave it empty to import without labels")
    rows, invalid = [], []
    first_error = None
    for n, record in enumerate(store.politely(records), 1):
        try:
            try:
                rows.append((n, _to_row(n, record, project, options, item_type, id_column, label_column,
                                        content_column)))
            except RecursionError:  # a value nested a few hundred deep parses but does not serialize
                raise BadRequest(TOO_DEEP.format(what=f"row {n}")) from None
        except AssayError as exc:
            invalid.append((n, exc.message))
            first_error = first_error or exc
    if invalid and not options.skip_invalid:
        # The first row at fault, how many others, and the way out: a 15,000-row file refused for its first row
        # says whether that row is alone.
        others = [n for n, _ in invalid[1:]]
        more = (f" ({len(others)} more row{'s' if len(others) != 1 else ''} cannot be imported either: "
                + _listed([f"row {n}" for n in others], 20).replace("; ", ", ") + ")") if others else ""
        first_error.message = (f"{invalid[0][1]}{more}. Nothing was imported: fix the file, or import with "
                               f"{options.flag('skip_invalid')} to leave out the rows that cannot be imported "
                               "(they are listed)")
        first_error.args = (first_error.message,)
        raise first_error
    return rows, invalid


def _delimiter_hint(columns: set) -> str:
    """A header read as one column that holds another separator: the file is likely separated by that one."""
    if len(columns) != 1:
        return ""
    (name,) = columns
    for sep, what in ((";", "semicolon"), ("|", "pipe")):
        if sep in name:
            return (f". The header reads as one column {name!r}: the file looks {what}-separated, but only "
                    "commas (CSV) and tabs (TSV) separate columns here; save it as CSV or TSV and import again")
    return ""


def _to_row(n, record, project, options, item_type, id_column, label_column, content_column):
    external_id = record.get(id_column) if id_column else None
    if external_id is not None:
        external_id = str(external_id).strip() or None
    label = None
    if label_column is not None:
        label = _parse_label(record.get(label_column), project, n, options)
    if content_column is not None:
        value = record.get(content_column)
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"row {n}: {content_column!r} is missing or empty")
        if item_type == "image" and options.media_dir is not None:
            _check_stored(value, options.media_dir, n)
        data = {content_column if item_type == "image" else "text": value}
    else:
        data = {}
    for key, value in record.items():
        if key in (id_column, label_column, content_column):
            continue
        data[key] = _scalar(value)
    if item_type == "tabular" and not data:
        raise BadRequest(f"row {n} has no feature columns")
    if _has_nul(record):
        # PostgreSQL's JSON cannot hold it, so SQLite refuses it too: a file imports the same on either engine.
        raise BadRequest(f"row {n} holds a NUL character (\\u0000), which the database cannot store; "
                         "remove it from the file and import again")
    if options.max_item_bytes and len(json.dumps(data, ensure_ascii=False)) > options.max_item_bytes:
        raise PayloadTooLarge(f"row {n} is larger than the item size limit of {options.max_item_bytes} bytes "
                              "(ASSAY_MAX_ITEM_BYTES)")
    return external_id, data, label


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def project_dir(media_root: str, project_id: int) -> str:
    """Where a project's image files are stored."""
    return os.path.join(media_root, f"project-{project_id}")


def inside(path: str, folder: str) -> bool:
    """Whether path, with symlinks and .. resolved, lies inside folder."""
    real_folder = os.path.realpath(folder)
    return os.path.commonpath([os.path.realpath(path), real_folder]) == real_folder


def _check_stored(value: str, media_dir: str, n: int) -> None:
    # The retrain worker opens these paths: one naming /etc/passwd would make it read server files.
    path = os.path.join(media_dir, value)
    if os.path.isabs(value) or not inside(path, media_dir) or not os.path.isfile(path):
        raise BadRequest(f"row {n}: image {value!r} is not a file in the project's media store; images must "
                         "live there: upload the image files or a zip of them, then refer to them by the "
                         "names the import gave them")


def _label_hint(options: ImportOptions) -> str:
    return (f" (labels are read from the column {options.label_column!r} because "
            f"{options.option('label_column')} names it; leave it empty to import without labels, or add the "
            "label to the project's labels first: PATCH /api/projects/<id> with the whole list)")


def _parse_label(value, project: dict, n: int, options: ImportOptions):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if project["multi_label"]:
        values = value if isinstance(value, list) else [v.strip() for v in str(value).split(_LABEL_SPLIT) if v.strip()]
    else:
        values = str(value).strip()
    return labels.checked(project, values, row=n, hint=_label_hint(options))

"""Getting items in (import) and labels out (export)."""
from __future__ import annotations

import os
import shutil
import tempfile

from flask import Response, current_app, jsonify, request, stream_with_context

from assay.domain import columnar, export, ingest, labelstudio
from assay.web import media
from assay import store
from assay.web.auth import require
from assay.errors import BadRequest
from .base import bp, get_db, get_retrain


def import_options(source, project_id: int) -> ingest.ImportOptions:
    return ingest.ImportOptions(
        text_column=source.get("text_column") or "text",
        id_column=ingest.optional_column(source.get("id_column"), "id"),
        label_column=ingest.optional_column(source.get("label_column")),
        image_column=source.get("image_column") or "image",
        max_item_bytes=int(current_app.config["MAX_ITEM_BYTES"]),
        media_dir=media.project_dir(current_app.config["MEDIA_DIR"], project_id),
        skip_invalid=str(source.get("skip_invalid", "")).strip().lower() in ("1", "true", "yes", "on"),
    )


def import_request(db, project: dict) -> dict:
    """Import from a JSON body, an uploaded file (multipart field "file") or a raw CSV/TSV/JSONL body."""
    options = import_options({**request.args, **request.form}, project["id"])
    uploads = request.files.getlist("file")
    if project["item_type"] == "image" and uploads and _is_image_upload(uploads):
        result = ingest.import_items(db, project, _image_records(project, uploads), options, folder_labels=True)
    elif uploads:
        # Werkzeug has already spooled the upload to a temporary file beyond 500 kB; parse it from there.
        upload = uploads[0]
        result = ingest.import_items(db, project, upload.stream, options, fmt=request.values.get("format"),
                                     filename=upload.filename)
    else:
        with _spooled_body() as body:
            if not body.tell():
                raise BadRequest("send a JSON list of items, a CSV/TSV/JSONL body, or a file in the field \"file\"")
            body.seek(0)
            fmt = request.values.get("format") or ("json" if request.is_json else None) or \
                _format_from_mimetype(request.mimetype)
            result = ingest.import_items(db, project, body, options, fmt=fmt)
    # Featurize the new items and refresh the queue in the background.
    get_retrain().request(project["id"])
    return result.as_dict()


def _spooled_body():
    """The raw request body copied to a temporary file (on disk beyond 1 MiB), never held whole in memory.

    The request stream stops at the request's size limit with a 413.
    """
    body = tempfile.SpooledTemporaryFile(max_size=2**20)
    shutil.copyfileobj(request.stream, body, 2**16)
    return body


def _is_image_upload(uploads) -> bool:
    names = [(u.filename or "").lower() for u in uploads]
    return all(n.endswith(".zip") or os.path.splitext(n)[1] in media.IMAGE_EXTENSIONS for n in names)


def _image_records(project: dict, uploads) -> list[dict]:
    root = current_app.config["MEDIA_DIR"]
    records = []
    for upload in uploads:
        if (upload.filename or "").lower().endswith(".zip"):
            records.extend(media.records_from_zip(root, project, upload.stream))
        else:
            raw = upload.stream.read(media.MAX_IMAGE_BYTES + 1)
            rel = media.store_image(root, project["id"], raw, upload.filename)
            records.append({"id": upload.filename, "image": rel, "name": upload.filename})
    return records


def _format_from_mimetype(mimetype: str) -> str | None:
    return {"text/csv": "csv", "text/tab-separated-values": "tsv", "application/x-ndjson": "jsonl",
            "application/jsonl": "jsonl", "application/json": "json"}.get(mimetype)


@bp.post("/projects/<int:project_id>/items")
def import_items(project_id: int):
    require("import", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    return jsonify(import_request(db, project))


@bp.get("/projects/<int:project_id>/export")
def export_labels(project_id: int):
    require("export", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    fmt = export.check_format(request.args.get("format", "jsonl"), over_http=True)
    every = request.args.get("annotations", "resolved")
    if every not in ("resolved", "all"):
        raise BadRequest("annotations must be 'resolved' (one row per item) or 'all' (every answer)")
    if fmt == "labelstudio" and every == "all":
        raise BadRequest("a Label Studio task already holds every answer: drop annotations=all")
    provenance = request.args.get("provenance", "0")
    if provenance not in ("0", "1", "false", "true"):
        raise BadRequest("provenance must be 1 (add where each label came from) or 0")
    provenance = provenance in ("1", "true")
    columns = columnar.data_columns(db, project_id) if fmt == "parquet" else ()
    records = export.iter_export(db, project_id, every_annotation=every == "all", provenance=provenance)
    if fmt == "parquet":
        body, mimetype, ext = columnar.stream_parquet(project, records, columns, provenance), \
            "application/vnd.apache.parquet", "parquet"
    elif fmt == "labelstudio":
        body, mimetype, ext = labelstudio.stream(project, records), "application/json", "labelstudio.json"
    else:
        keys = store.export_data_keys(db, project_id) if fmt == "csv" else ()
        body = export.stream(project, records, fmt, keys, provenance)
        mimetype, ext = ("text/csv", "csv") if fmt == "csv" else ("application/x-ndjson", "jsonl")
    return Response(stream_with_context(body), mimetype=mimetype,
                    headers={"Content-Disposition": _attachment(export_filename(project, ext, provenance,
                                                                                every == "all"))})


def export_filename(project: dict, ext: str, provenance: bool, every_answer: bool) -> str:
    """The download's name: exports with provenance or every answer have other columns, so other names
    (one name for all would have the browser save the second as "name-labels (1).csv")."""
    return (f"{project['name']}-labels" + ("-all-answers" if every_answer else "")
            + ("-provenance" if provenance else "") + f".{ext}")


def _attachment(filename: str) -> str:
    """A Content-Disposition that survives any project name: ASCII fallback plus RFC 5987 UTF-8."""
    from urllib.parse import quote

    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"

"""Image items: bringing files in from a folder, a zip or a CSV of paths, and serving them back.

Files are copied into ``media/project-<id>/`` under a name made from their
content hash, so nothing a user supplies ever becomes part of a path we write,
and the same image imported twice is stored once. Archives are read entry by
entry with limits on count, size and compression ratio (zip bombs) and only
image files that Pillow can decode are kept.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile

from flask import Blueprint, abort, current_app, send_from_directory

from assay.errors import BadRequest, PayloadTooLarge
from assay.domain.ingest import inside, project_dir

IMAGE_EXTENSIONS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".gif": "gif", ".bmp": "bmp", ".webp": "webp"}
MAX_FILES = 200_000
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed; real images barely compress

bp = Blueprint("media", __name__)


def _check_image(raw: bytes, name: str) -> str:
    from PIL import UnidentifiedImageError

    from assay.features.image import ImageTooLarge, open_image

    try:
        with open_image(io.BytesIO(raw), name) as img:
            img.verify()
            fmt = (img.format or "").lower()
    except ImageTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(f"{name} is not a readable image ({exc})") from None
    return {"jpeg": "jpg"}.get(fmt, fmt or "img")


def store_image(media_root: str, project_id: int, raw: bytes, name: str) -> str:
    """Save one image's bytes; returns its path relative to the project's media folder."""
    if len(raw) > MAX_IMAGE_BYTES:
        raise PayloadTooLarge(f"{name} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
    ext = _check_image(raw, name)
    digest = hashlib.sha256(raw).hexdigest()[:32]
    rel = f"{digest}.{ext}"
    folder = project_dir(media_root, project_id)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, rel)
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    return rel


def _label_from_parts(parts: list[str], labels: list[str]):
    # folder/<label>/image.png: a parent folder named like a label is a seed label.
    for part in reversed(parts[:-1]):
        if part in labels:
            return part
    return None


def records_from_zip(media_root: str, project: dict, raw) -> list[dict]:
    """Images of a zip archive, given as bytes or a seekable binary file."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw) if isinstance(raw, (bytes, bytearray)) else raw)
    except zipfile.BadZipFile:
        raise BadRequest("the upload is not a valid zip archive") from None
    entries = [e for e in archive.infolist() if not e.is_dir()]
    if len(entries) > MAX_FILES:
        raise PayloadTooLarge(f"the archive holds {len(entries)} files; the limit is {MAX_FILES}")
    total = 0
    records = []
    for entry in entries:
        name = entry.filename.replace("\\", "/")
        parts = [p for p in name.split("/") if p]
        if name.startswith("/") or ".." in parts:
            raise BadRequest(f"refusing archive entry {name!r}: absolute or parent paths are not allowed")
        ext = os.path.splitext(name)[1].lower()
        if ext not in IMAGE_EXTENSIONS or parts[-1].startswith("."):
            continue
        if entry.compress_size and entry.file_size / entry.compress_size > MAX_RATIO:
            raise BadRequest(f"refusing {name!r}: it expands {entry.file_size // entry.compress_size}x (zip bomb?)")
        if entry.file_size > MAX_IMAGE_BYTES:
            raise PayloadTooLarge(f"{name} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
        total += entry.file_size
        if total > MAX_TOTAL_BYTES:
            raise PayloadTooLarge(f"the archive expands beyond {MAX_TOTAL_BYTES // 2**30} GB")
        with archive.open(entry) as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)  # never trust the header's size alone
        rel = store_image(media_root, project["id"], data, name)
        records.append({"id": name, "image": rel, "name": parts[-1],
                        **({"label": lab} if (lab := _label_from_parts(parts, project["labels"])) else {})})
    if not records:
        raise BadRequest("the archive holds no PNG, JPEG, GIF, BMP or WebP images")
    return records


def records_from_folder(media_root: str, project: dict, folder: str) -> list[dict]:
    records = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for filename in sorted(filenames):
            if os.path.splitext(filename)[1].lower() not in IMAGE_EXTENSIONS or filename.startswith("."):
                continue
            full = os.path.join(dirpath, filename)
            rel_name = os.path.relpath(full, folder).replace(os.sep, "/")
            if not inside(full, folder):
                raise BadRequest(f"{rel_name} is a link to a file outside {folder}; images must live inside "
                                 "the folder being imported: copy them in")
            with open(full, "rb") as fh:
                rel = store_image(media_root, project["id"], fh.read(MAX_IMAGE_BYTES + 1), rel_name)
            parts = rel_name.split("/")
            records.append({"id": rel_name, "image": rel, "name": filename,
                            **({"label": lab} if (lab := _label_from_parts(parts, project["labels"])) else {})})
    if not records:
        raise BadRequest(f"no PNG, JPEG, GIF, BMP or WebP images under {folder}")
    return records


def records_from_csv_paths(media_root: str, project: dict, csv_path: str, image_column: str) -> list[dict]:
    """A CSV whose image column holds paths relative to the CSV's folder, and inside it."""
    base = os.path.dirname(os.path.abspath(csv_path))
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and image_column not in rows[0]:
        raise BadRequest(f"no column {image_column!r} in {csv_path}; name it with --image-column")
    out = []
    for n, row in enumerate(rows, 1):
        path = row[image_column]
        full = os.path.join(base, path)
        if not inside(full, base):
            raise BadRequest(f"row {n}: image {path!r} is outside {base}; images must live in the CSV's folder "
                             "or below it, named by paths relative to it")
        if not os.path.isfile(full):
            raise BadRequest(f"row {n}: image file {path!r} not found")
        with open(full, "rb") as fh:
            rel = store_image(media_root, project["id"], fh.read(MAX_IMAGE_BYTES + 1), path)
        out.append({**row, image_column: rel, "name": os.path.basename(path)})
    return out


@bp.get("/projects/<int:project_id>/media/<name>")
def serve_media(project_id: int, name: str):
    from .auth import require

    require("view", project_id)
    folder = project_dir(current_app.config["MEDIA_DIR"], project_id)
    if "/" in name or name.startswith("."):
        abort(404)
    # send_from_directory refuses anything that escapes the folder.
    return send_from_directory(folder, name, max_age=86400)

"""What makes two items exact duplicates: a pure function, shared by the items table and the migrations."""
from __future__ import annotations

import hashlib
import json


def content_hash(data: dict) -> str:
    """What makes two items exact duplicates (twins): the SHA-256 of a text item's text, else of its whole data
    (canonical JSON: an image's reference, a row's values). Kept in ``items.content_hash`` from import on."""
    text = data.get("text") if isinstance(data, dict) else None
    content = text if isinstance(text, str) else json.dumps(data, sort_keys=True, ensure_ascii=False,
                                                             separators=(",", ":"))
    return hashlib.sha256(content.encode("utf-8")).hexdigest()

"""Waiting on the page and reading the API, shared by the browser tests."""
from __future__ import annotations

import json
import time

CURRENT = """() => {
  const text = document.querySelector('#item-body .item-text');
  return {id: document.getElementById('item').dataset.itemId, text: text ? text.textContent : null};
}"""


def current(page) -> dict:
    return page.evaluate(CURRENT)


def wait_for_item(page, not_id: str | None = None, is_id: str | None = None) -> dict:
    page.wait_for_function(
        """([notId, isId]) => {
          const id = document.getElementById('item').dataset.itemId;
          return id && (isId ? id === isId : id !== notId);
        }""",
        arg=[not_id, is_id],
    )
    return current(page)


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def export_rows(api, pid) -> list[dict]:
    text = api.get(f"/api/projects/{pid}/export?format=jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]

"""Schemathesis against a live server's /api/openapi.json: no request gets a 5xx.

The server runs as its own process with a seeded project (items and labels),
so generated paths such as /api/projects/1/queue reach real data, not only
404s. Examples per operation are bounded and derandomized, so CI runs the
same requests every time.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from conftest import AssayServer, sms_texts

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = AssayServer(tmp_path_factory.mktemp("fuzz"))
    server.start()
    admin = server.client()
    project_id = server.create_project(admin, "fuzzed", sms_texts(40), overlap=2)
    assert project_id == 1  # the smallest id the schema allows, which the generator tries first
    # A second, multi-label project so both label shapes exist.
    status, body = admin.post("/api/projects", {"name": "multi", "labels": ["a", "b", "c"], "multi_label": True})
    assert status == 201, body
    for annotator in ("ann1", "ann2"):
        client = server.client(annotator=annotator)
        status, items = client.get(f"/api/projects/{project_id}/queue?n=5")
        assert status == 200 and items
        for it in items:
            status, body = client.post(f"/api/projects/{project_id}/annotations", {"item_id": it["id"], "label": "ham"})
            assert status == 201, body
        client.close()
    admin.close()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{fuzz_server.port}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# Requests the fuzzer (or a probe after it) found answered with a 5xx, kept as fixed, fast regressions.
# Each must get a JSON 4xx naming the problem (or, for the export, just work).
TOO_BIG = 2**63  # one past SQLite's largest INTEGER
FOUND = [
    ("GET", f"/api/projects/{TOO_BIG}", None),
    ("GET", f"/api/projects/{TOO_BIG}/queue", None),
    ("DELETE", f"/api/projects/1/annotations/{TOO_BIG}", None),
    ("POST", "/api/projects/1/annotations", {"item_id": TOO_BIG, "label": "ham"}),
    ("POST", "/api/projects/1/annotations", {"item_id": 1, "label": "ham", "duration_ms": TOO_BIG}),
    ("PATCH", "/api/projects/1", {"strategy_params": {"beta": "x"}}),
    ("POST", "/api/projects", {"name": "bad-beta", "labels": ["a", "b"], "strategy_params": {"beta": "x"}}),
    ("EXPORT", "\u65e5\u672c\u8a9e \u2713", None),  # a project whose name is not Latin-1
]


@pytest.mark.parametrize("method,path,body", FOUND, ids=[f"{m} {p}"[:60] for m, p, _ in FOUND])
def test_inputs_that_once_made_a_server_error(fuzz_server, method, path, body):
    client = fuzz_server.client(annotator="prober")
    if method == "EXPORT":
        status, created = client.post("/api/projects", {"name": path, "labels": ["a", "b"]})
        assert status == 201, created
        method, path = "GET", f"/api/projects/{created['id']}/export?format=csv"
    status, answer = client.request(method, path, body)
    client.close()
    assert status < 500, f"{method} {path} {body} -> {status} {answer}"
    if status >= 400:
        assert isinstance(answer, dict) and answer["status"] == status and answer["error"], answer


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_server_error(case, fuzz_server):
    case.call_and_validate(checks=[not_a_server_error], timeout=30)

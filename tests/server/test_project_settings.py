"""ProjectSettings (assay.domain.settings) drives every place a project setting is spelled out:
the checks of requests, the OpenAPI document, `assay create-project`, the new-project form, and
matches the migrations' column defaults."""
from __future__ import annotations

import dataclasses
import json
import re
import sqlite3

import pytest
import sqlite_utils

from assay.domain import projects
from assay.domain.settings import FIELDS, ProjectSettings, defaults, settings

SPEC = settings()
BOUNDED = [name for name, s in SPEC.items() if s.kind in ("integer", "number")]


def test_every_field_is_in_the_openapi_input_schema_with_its_bounds_and_default(client):
    schema = client.get("/api/openapi.json").json["components"]["schemas"]
    project_in = schema["ProjectIn"]
    assert list(project_in["properties"]) == list(FIELDS)
    assert project_in["required"] == [name for name in FIELDS if name not in defaults()]
    for name, s in SPEC.items():
        prop = project_in["properties"][name]
        if s.kind in ("integer", "number"):
            assert (prop["minimum"], prop["maximum"]) == (s.low, s.high), name
            assert prop.get("exclusiveMinimum", False) == s.exclusive, name
        if s.kind == "choice":
            assert prop["enum"] == list(s.choices)
        if s.schema_default and name in defaults():
            assert prop["default"] == defaults()[name], name
        assert prop.get("nullable", False) == s.nullable, name
    shown = schema["Project"]["properties"]
    assert [name for name in FIELDS if name in shown] == [name for name, s in SPEC.items() if s.shown]


def test_every_cli_field_is_an_option_of_create_project_with_its_default_and_help(app):
    from assay.cli import create_project_command

    options = {p.name: p for p in create_project_command.params}
    assert options["name"].param_type_name == "argument"
    for name, s in SPEC.items():
        if name == "name":
            continue
        if not s.on_cli:
            assert name not in options
            continue
        option = options[name]
        assert option.opts == ["--" + name.replace("_", "-")]
        assert option.help == s.help
        if name in defaults() and s.kind != "boolean":
            assert option.default == defaults()[name], name
        if s.kind == "choice":
            assert list(option.type.choices) == list(s.choices)
    assert options["labels"].required and options["multi_label"].is_flag


def test_create_project_takes_the_settings_defaults(runner, app):
    result = runner.invoke(args=["create-project", "plain", "--labels", "a, b", "--keys", "j,k"])
    assert result.exit_code == 0, result.output
    from assay import store

    typed = ProjectSettings.from_row(store.get_project(app.extensions["assay.db"].reader, "plain"))
    assert typed == ProjectSettings(name="plain", labels=["a", "b"], keys=["j", "k"])


def test_the_form_gets_each_setting_from_the_dataclass(client):
    html = client.get("/").get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="project-settings">(.*?)</script>', html, re.S)
    config = json.loads(block.group(1))
    assert set(config) == set(FIELDS)
    for name, s in SPEC.items():
        assert config[name]["kind"] == s.kind
        assert config[name]["default"] == defaults().get(name)
        if s.low is not None:
            assert (config[name]["min"], config[name]["max"]) == (s.low, s.high)
    assert f'name="batch_size" type="number" min="{SPEC["batch_size"].low}" value="{defaults()["batch_size"]}"' in html
    assert f'maxlength="{SPEC["name"].high}"' in html
    for choice in SPEC["item_type"].choices:
        assert f'<option value="{choice}"' in html


def test_projects_js_holds_no_default_of_its_own():
    from assay.web import pages

    with open(f"{pages.bp.static_folder}/projects.js") as fh:
        script = fh.read()
    for name, value in defaults().items():
        if isinstance(value, str):
            assert f'"{value}"' not in script, name
    assert "project-settings" in script


@pytest.mark.parametrize("name", BOUNDED)
def test_out_of_bounds_values_are_refused_with_the_dataclass_message(client, name):
    s = SPEC[name]
    too_big = s.high + 1 if s.kind == "integer" else s.high + 0.5
    r = client.post("/api/projects", json={"name": f"p-{name}", "labels": ["a", "b"], name: too_big})
    assert r.status_code == 400
    if s.kind == "integer":
        assert r.json["error"] == f"{name} must be an integer between {s.low} and {s.high}, got {too_big!r}"
    else:
        span = f"between {s.low} and {s.high}" if s.exclusive else f"from {s.low} to {s.high}"
        assert r.json["error"].startswith(f"{name} must be a number {span}{s.explain}")
    # The bounds themselves are allowed where they are inclusive.
    if not s.exclusive:
        r = client.post("/api/projects", json={"name": f"q-{name}", "labels": ["a", "b"], name: s.high})
        assert r.status_code == 201, r.json


def test_a_value_outside_the_choices_is_refused(client, make_project):
    r = client.post("/api/projects", json={"name": "v", "labels": ["a", "b"], "item_type": "video"})
    assert r.status_code == 400
    assert r.json["error"] == f"item_type must be one of {list(SPEC['item_type'].choices)}, got 'video'"
    pid = make_project()
    r = client.patch(f"/api/projects/{pid}", json={"overlap": 0})
    assert r.status_code == 400 and r.json["error"].startswith(f"overlap must be an integer between 1 and "
                                                               f"{SPEC['overlap'].high}")


def test_validation_fills_in_the_dataclass_defaults():
    out = projects.validate({"name": "d", "labels": ["a", "b"]})
    assert {k: out[k] for k in defaults()} == defaults()
    assert ProjectSettings(**out) == ProjectSettings(name="d", labels=["a", "b"])


def _sql_literal(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, dict):
        return f"'{json.dumps(value)}'"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def test_the_migrations_column_defaults_match_the_dataclass(tmp_path):
    from assay.store.migrations import MIGRATIONS

    conn = sqlite3.connect(tmp_path / "fresh.sqlite")
    for _, migrate in MIGRATIONS:
        migrate(sqlite_utils.Database(conn))
    columns = {row[1]: row for row in conn.execute("PRAGMA table_info(projects)")}
    assert set(FIELDS) <= set(columns)
    for name, value in defaults().items():
        if name == "strategy":
            # 0001 made 'power_bald' the column default; every create writes the strategy, so only rows
            # inserted by hand (old databases, tests) ever took it, and history is not rewritten.
            assert columns[name][4] == "'power_bald'"
            continue
        assert columns[name][4] == _sql_literal(value), name
        assert columns[name][3] == (0 if SPEC[name].nullable else 1), name
    schema = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'projects'").fetchone()[0]
    allowed = ", ".join(f"'{t}'" for t in SPEC["item_type"].choices)
    assert f"CHECK (item_type IN ({allowed}))" in schema


def test_the_store_keeps_every_setting():
    from assay.store.projects import PROJECT_FIELDS

    assert set(FIELDS) <= set(PROJECT_FIELDS)


def test_from_row_leaves_out_what_is_not_a_setting():
    row = {"id": 3, "created_at": "now", "n_items": 5, **defaults(), "name": "r", "labels": ["a", "b"]}
    typed = ProjectSettings.from_row(row)
    assert typed.as_dict() == {**defaults(), "name": "r", "labels": ["a", "b"]}
    assert dataclasses.fields(typed)[0].name == "name"

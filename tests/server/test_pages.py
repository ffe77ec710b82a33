"""The HTML pages and the learning-curve PNG, through Flask's test client."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from assay import plots
from assay import store

NASTY = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _insert(app, pid, rows):
    """Items straight into the store: page tests need no retrain worker."""
    return store.insert_items(app.extensions["assay.db"], pid, rows)


def _version(app, pid, **fields):
    """A model version as the retrain worker records it."""
    version = {"status": "ok", "model": "logreg", "strategy": "power_bald", "n_labels": 0, **fields}
    with app.extensions["assay.db"].write() as conn:
        return store.record_model_version(conn, pid, version)


def _png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes every pixel, not just the header
    assert image.format == "PNG"
    return image.size


@pytest.fixture
def project(app, make_project):
    pid = make_project("sms", labels=("ham", "spam", "unsure"), strategy="margin")
    _insert(app, pid, [(None, {"text": f"message {i}"}, "ham" if i < 3 else None) for i in range(10)])
    return pid


def test_index_lists_projects_with_progress(client, project):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "sms" in html and f'href="/projects/{project}"' in html
    for label in ("ham", "spam", "unsure"):
        assert f'<span class="chip">{label}</span>' in html
    assert "3</strong> / 10 labeled (30.0%)" in html
    assert 'data-percent="30.0"' in html and "/static/bars.js" in html
    assert "no model yet" in html and "margin" in html
    assert 'id="create-project"' in html and "/static/projects.js" in html


def test_index_without_projects_invites_creating_one(client):
    r = client.get("/")
    assert r.status_code == 200
    assert "No projects yet" in r.get_data(as_text=True)


def test_overview_shows_stats_versions_import_and_export(app, client, project):
    _version(app, project, n_labels=3, accuracy=0.8125, accuracy_std=0.05, accuracy_method="cv",
             fit_seconds=0.123, acquire_seconds=0.0456)
    _version(app, project, status="timeout", n_labels=3, error="the model took longer than the retrain timeout")
    r = client.get(f"/projects/{project}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for label in ("ham", "spam", "unsure"):
        assert f'<span class="chip">{label}</span>' in html
    assert 'id="stat-labeled">3<' in html and 'id="stat-unlabeled">7<' in html
    assert '<div class="stat-value">10</div><div class="stat-name">items</div>' in html
    assert "81.2%" in html and "± 5.0" in html and "0.12" in html and "0.05" in html
    assert "badge timeout" in html and "the model took longer than the retrain timeout" in html
    assert 'id="last-error"' in html  # the failed retrain is said at the top, not only in the table
    assert f'action="/api/projects/{project}/items"' in html and 'enctype="multipart/form-data"' in html
    for name in ("text_column", "id_column", "label_column"):
        assert f'name="{name}"' in html
    assert f"/api/projects/{project}/export?format=jsonl" in html
    assert f"/api/projects/{project}/export?format=csv" in html
    assert f"/projects/{project}/annotate" in html and f"/projects/{project}/learning-curve.png" in html


def test_live_fragment_matches_overview(app, client, project):
    r = client.get(f"/projects/{project}/live")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "<html" not in html and 'id="stat-labeled">3<' in html and 'data-versions="0"' in html


def test_annotate_page_has_label_buttons_in_project_order(client, project):
    r = client.get(f"/projects/{project}/annotate")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    positions = [html.index(f'data-label="{label}" data-key="{n}"') for n, label in
                 enumerate(("ham", "spam", "unsure"), 1)]
    assert positions == sorted(positions)
    assert "/static/annotate.js" in html
    config = json.loads(html.split('id="assay-config">', 1)[1].split("</script>", 1)[0])
    assert config["labels"] == ["ham", "spam", "unsure"] and config["multi_label"] is False
    assert config["api"] == f"/api/projects/{project}"
    # Items arrive through the queue API, never baked into the page.
    assert "message 5" not in html


def test_multi_label_annotate_page_has_submit(client, make_project):
    pid = make_project("topics", labels=("sport", "politics"), multi_label=True, strategy="margin")
    html = client.get(f"/projects/{pid}/annotate").get_data(as_text=True)
    assert 'id="submit"' in html and "label-buttons multi" in html and "Enter submits" in html


def test_item_text_and_project_names_are_escaped(app, client, make_project):
    pid = make_project('evil <b>name</b>', labels=("<i>a</i>", "b"), strategy="margin")
    _insert(app, pid, [(None, {"text": NASTY}, "<i>a</i>"), (None, {"text": NASTY + " 2"}, None)])
    _version(app, pid, status="failed", n_labels=1, error='<script>alert("err")</script>')
    for url in ("/", f"/projects/{pid}", f"/projects/{pid}/live", f"/projects/{pid}/annotate"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<b>name</b>" not in html and "<i>a</i>" not in html, url
        assert "<img src=x" not in html, url
    overview = client.get(f"/projects/{pid}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;err&#34;)&lt;/script&gt;" in overview
    annotate = client.get(f"/projects/{pid}/annotate").get_data(as_text=True)
    # The labels travel to the script as JSON with <, > escaped, so no tag can close the script element.
    assert "\\u003ci\\u003ea\\u003c/i\\u003e" in annotate


def test_unknown_project_is_an_html_404(client):
    for url in ("/projects/999", "/projects/999/annotate", "/projects/999/live", "/projects/999/learning-curve.png"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert r.mimetype == "text/html"
        html = r.get_data(as_text=True)
        assert "404" in html and "Not found" in html and "no project 999" in html
        assert 'href="/static/assay.css"' in html


def test_unknown_page_is_an_html_404_but_api_stays_json(client):
    r = client.get("/no/such/page")
    assert r.status_code == 404 and r.mimetype == "text/html" and "Not found" in r.get_data(as_text=True)
    r = client.get("/api/projects/999")
    assert r.status_code == 404 and r.is_json


def test_error_page_escapes_its_message(app):
    from assay.web.pages import error_page

    with app.test_request_context("/"):
        body, status = error_page(400, "<b>bad</b> input")
    assert status == 400 and "&lt;b&gt;bad&lt;/b&gt; input" in body and "Bad request" in body


def test_learning_curve_png_without_a_model(client, project):
    r = client.get(f"/projects/{project}/learning-curve.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert _png_size(r.data) == (720, 405)


def test_learning_curve_png_uses_ok_versions(app, client, project):
    empty = client.get(f"/projects/{project}/learning-curve.png").data
    _version(app, project, n_labels=10, accuracy=0.6, accuracy_std=0.1)
    _version(app, project, status="failed", n_labels=20, error="boom")
    _version(app, project, n_labels=30, accuracy=0.8, accuracy_std=0.05)
    r = client.get(f"/projects/{project}/learning-curve.png")
    assert r.status_code == 200 and _png_size(r.data) == (720, 405)
    assert r.data != empty and r.headers["Cache-Control"] == "no-cache"
    # The overview names the curve by its version count: that URL may be cached, a stale one may not.
    assert f"/projects/{project}/learning-curve.png?v=3" in client.get(f"/projects/{project}").get_data(as_text=True)
    assert client.get(f"/projects/{project}/learning-curve.png?v=3").headers["Cache-Control"] == "max-age=3600"
    assert client.get(f"/projects/{project}/learning-curve.png?v=2").headers["Cache-Control"] == "no-cache"


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _ink(png: bytes) -> int:
    """How many pixels are not white: a crude measure of what was drawn."""
    return int((_rgb(png).min(axis=2) < 250).sum())


def _near(png: bytes, colour: tuple[int, int, int], tol: int = 6) -> int:
    return int((np.abs(_rgb(png) - np.array(colour)).max(axis=2) <= tol).sum())


def test_learning_curves_size_band_and_reference():
    series = [{"name": "power_bald", "x": [10, 20, 40], "y": [0.6, 0.7, 0.85], "std": [0.05, 0.04, 0.02]},
              {"name": "random", "x": [10, 20, 40], "y": [0.55, 0.62, 0.7]}]
    plain = plots.learning_curves(series, width=400, height=300)
    assert _png_size(plain) == (400, 300)
    # The ±std band: the first colour (#0072B2) at alpha 0.18 over white.
    band = tuple(round(255 + 0.18 * (c - 255)) for c in (0x00, 0x72, 0xB2))
    no_band = plots.learning_curves([{**series[0], "std": None}, series[1]], width=400, height=300)
    assert _near(plain, band) > 2000 and _near(no_band, band) < 200
    # The reference: a dashed grey line (and a legend entry) inside the data's range.
    with_ref = plots.learning_curves(series, reference=(0.75, "all labels"), width=400, height=300)
    assert _png_size(with_ref) == (400, 300)
    changed = np.abs(_rgb(with_ref) - _rgb(plain)).max(axis=2) > 30
    assert changed.sum(axis=1).max() > 0.4 * 400  # one row changed across most of the plot: the line
    titled = plots.learning_curves(series, title="SMS spam", width=400, height=300)
    assert _png_size(titled) == (400, 300) and titled != plain


def test_learning_curves_empty_says_no_model_yet():
    empty = plots.learning_curves([], width=320, height=200)
    also_empty = plots.learning_curves([{"name": "a", "x": [], "y": []}], width=320, height=200)
    assert _png_size(empty) == (320, 200) == _png_size(also_empty)
    drawn = plots.learning_curves([{"name": "a", "x": [1, 2], "y": [0.5, 0.6]}], width=320, height=200)
    # The message is a little text in the middle, far less ink than axes, ticks and a line.
    assert 0 < _ink(empty) < _ink(drawn)


def test_learning_curves_rejects_mismatched_series():
    with pytest.raises(ValueError, match="x has 2 points but y has 3"):
        plots.learning_curves([{"name": "a", "x": [1, 2], "y": [1, 2, 3]}])


def test_new_project_form_explains_each_strategy_default_first(client):
    import html as html_mod
    import re

    from assay import strategies
    from assay.domain.projects import DEFAULTS

    html = client.get("/").get_data(as_text=True)
    select = html.split('<select name="strategy">')[1].split("</select>")[0]
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', select)
    assert sorted(name for name, _, _ in options) == strategies.available()
    assert options[0][:2] == (DEFAULTS["strategy"], " selected")
    assert [name for name, selected, _ in options if selected] == [DEFAULTS["strategy"]]
    for name, _, text in options:
        description = strategies.get(name).description
        assert description and text.endswith(" — " + html_mod.escape(description)), text

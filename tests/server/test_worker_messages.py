"""What a failed retrain reports: an import failure says where to fix it."""
from __future__ import annotations

from assay.learning.worker import failure_message
from assay.models import ModelError, make_model


def test_a_model_module_the_server_cannot_import_says_how_to_make_it_importable():
    try:
        make_model("surely_not_installed_here:make")
    except ModelError as exc:
        text = failure_message(exc)
    assert text.startswith("ModelError: cannot import module 'surely_not_installed_here'")
    assert "'surely_not_installed_here' is not importable in the server's environment" in text
    assert "PYTHONPATH" in text and "install" in text


def test_an_import_inside_the_model_names_the_missing_module():
    try:
        import surely_missing_dependency  # noqa: F401 - as a model's fit would, lazily
    except ImportError as exc:
        text = failure_message(exc)
    assert text.startswith("ModuleNotFoundError: No module named 'surely_missing_dependency'")
    assert "'surely_missing_dependency' is not importable in the server's environment" in text


def test_other_failures_are_reported_as_they_are():
    assert failure_message(RuntimeError("this model always fails to fit")) == \
        "RuntimeError: this model always fails to fit"

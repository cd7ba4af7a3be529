"""AppTest for the Runs page's "Download and export": every format prepares a file and offers it."""

from __future__ import annotations

import importlib

import pytest

from cnn_core import runs
from cnn_core.runs.export import FORMATS
from tests.run_fixtures import finished_run
from tests.test_pages_app import open_page


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_format_prepares_a_download(fmt):
    run_id = finished_run(name="export me", train_size=200, val_size=100)
    at = open_page("pages/runs.py", {"run": run_id})
    next(s for s in at.selectbox if s.label == "Format").set_value(fmt).run()
    next(b for b in at.button if b.label == "Prepare file").click().run()
    assert not at.exception, [e.value for e in at.exception]
    downloads = [el for el in at.get("download_button") if "Download" in el.proto.label]
    assert len(downloads) == 1, fmt
    parity = [c.value for c in at.caption if "Parity with PyTorch" in c.value]
    assert bool(parity) == (fmt != "checkpoint"), parity


def test_the_export_function_survives_importing_its_module():
    """Importing ``cnn_core.runs.export`` (as the first export does) once replaced the package's
    ``export`` function by the module: every later export in that process was a TypeError."""
    module = importlib.import_module("cnn_core.runs.export")
    assert callable(runs.export) and runs.export is not module

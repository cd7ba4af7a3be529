"""Every page that takes a typed folder keeps it inside the data roots (one confining function,
``settings.browser_data_dir``): a readable image folder outside them is refused with one line
and nothing is read, queued or created; a folder inside them is used as the absolute folder."""

from __future__ import annotations

import re

import pytest

from cnn_core import sweeps
from cnn_core.runs import api
from cnn_core.settings import data_roots
from tests.conftest import PROJECT
from tests.data_fixtures import make_image_folder
from tests.test_pages_app import no_worker, open_page  # noqa: F401 - no_worker: fixture


def outside_and_inside(tmp_path) -> tuple[str, str]:
    """(an image folder outside every data root, one inside the first, typed relative)."""
    make_image_folder(tmp_path / "outside", n_per_class=4)
    make_image_folder(data_roots()[0] / "pets", n_per_class=4)
    return str(tmp_path / "outside"), "pets"


def refused(at) -> bool:
    return not at.exception and any("outside the allowed" in e.value for e in at.error)


def test_train(tmp_path, no_worker):  # noqa: F811
    outside, inside = outside_and_inside(tmp_path)
    at = open_page("pages/train.py")
    at.selectbox(key="t_dataset").select("image-folder").run()
    at.text_input(key="t_data_dir").input(outside).run()
    at.button[0].click().run()
    assert refused(at) and api.list_runs() == []
    at.text_input(key="t_data_dir").input(inside).run()
    at.button[0].click().run()
    (run,) = api.list_runs()
    assert run["config"]["data_dir"] == str(data_roots()[0] / "pets")


def test_data(tmp_path):
    outside, inside = outside_and_inside(tmp_path)
    at = open_page("pages/data.py")
    next(s for s in at.selectbox if s.label == "Dataset").select("image-folder").run()
    folder = next(t for t in at.text_input if t.label.startswith("Data folder"))
    folder.input(outside).run()
    assert refused(at) and not at.metric
    folder.input(inside).run()
    assert not at.exception and not at.error and at.metric


def test_data_health(tmp_path):
    outside, inside = outside_and_inside(tmp_path)
    at = open_page("pages/health.py")
    at.selectbox(key="dh_dataset").select("image-folder").run()
    at.text_input(key="dh_data_dir").input(outside).run()
    assert refused(at)
    assert not [b for b in at.button if b.label == "Run health check"]
    at.text_input(key="dh_data_dir").input(inside).run()
    assert not at.exception and not at.error
    assert [b for b in at.button if b.label == "Run health check"]


@pytest.mark.parametrize("where", ["outside", "../.."])
def test_sweep(tmp_path, where):
    outside, _ = outside_and_inside(tmp_path)
    at = open_page("pages/sweep.py")
    at.selectbox(key="sw_dataset").select("image-folder").run()
    next(t for t in at.text_input if t.label == "Data folder").input(
        outside if where == "outside" else where
    ).run()
    next(b for b in at.button if b.label == "Launch sweep").click().run()
    assert refused(at) and sweeps.list_sweeps() == []


def test_every_page_asking_for_a_folder_confines_it():
    """A new page with a folder field is caught here until it calls the confining function
    (and gets a test above)."""
    asking = {  # a folder text input of its own, or the config form (it draws data_dir)
        page.name
        for page in (PROJECT / "pages").glob("*.py")
        if re.search(r'text_input\(\s*"[^"]*folder', page.read_text(), flags=re.I)
        or "ui.config_form" in page.read_text()
    }
    assert asking == {"train.py", "data.py", "health.py", "sweep.py"}
    for name in asking:
        assert "browser_data_dir(" in (PROJECT / "pages" / name).read_text(), name

"""CelebA in one click on the pages: Get CelebA on Data (licence first), the smile classifier
offered on Home and Faces once CelebA is present, the book's erratum on Train."""

from __future__ import annotations

import pytest

from cnn_core import runs
from cnn_core.runs import api
from tests import celeba_fixtures as fx
from tests.data_fixtures import make_celeba
from tests.fetch_server import serve_celeba
from tests.test_pages_app import open_page

SMILE_BOOK = "Train the smile classifier (the book's v1)"


@pytest.fixture
def no_worker(monkeypatch):
    monkeypatch.setattr(api, "ensure_worker", lambda *a, **k: None)
    monkeypatch.setattr(runs, "ensure_worker", lambda *a, **k: None)


def test_data_page_gets_celeba_after_the_licence_is_accepted(tmp_path, monkeypatch):
    src = fx.source(tmp_path / "src")
    fx.image_zip(src, src / "img_align_celeba.zip")
    server = serve_celeba(src, tmp_path, monkeypatch)
    try:
        at = open_page("pages/data.py")
        at.selectbox[0].select("celeba").run()
        assert "CelebA not found" in at.error[0].value
        button = next(b for b in at.button if b.label == "Get CelebA")
        assert button.disabled and "non-commercial" in " ".join(c.value for c in at.caption)
        assert not server.log  # nothing is fetched before the terms are accepted
        at.checkbox(key="data_get_terms").check().run()
        at.selectbox(key="data_get_src").select("hf").run()
        next(b for b in at.button if b.label == "Get CelebA").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Training images"] == "18"  # the fetched fixture, all of partition 0
    finally:
        server.close()


def test_smile_classifier_is_offered_once_celeba_is_present(tmp_path, no_worker):
    home = open_page("pages/home.py")
    assert SMILE_BOOK not in [b.label for b in home.button]
    faces = open_page("pages/faces.py")
    assert "Get CelebA" in [b.label for b in faces.button]  # no face model, no CelebA yet

    make_celeba(tmp_path / "data", n=30)
    home = open_page("pages/home.py")
    assert SMILE_BOOK in [b.label for b in home.button]
    faces = open_page("pages/faces.py")
    next(b for b in faces.button if b.label == SMILE_BOOK).click().run()
    (run,) = runs.list_runs()
    config = run["config"]
    assert (config["dataset"], config["attribute"], config["model"]) == ("celeba", "Smiling", "v1")
    assert (config["train_size"], config["val_size"], config["epochs"]) == (16_000, 1_000, 30)
    faces = open_page("pages/faces.py")  # the click opened the run on the Runs page
    next(b for b in faces.button if "fast-faces" in b.label).click().run()
    assert {r["config"]["model"] for r in runs.list_runs()} == {"v1", "v5"}


def test_train_page_explains_the_books_erratum(tmp_path):
    at = open_page("pages/train.py")
    at.selectbox(key="t_dataset").select("celeba").run()
    text = " ".join(c.value for c in at.caption)
    assert "attr[18]" in text and "Heavy_Makeup, not Smiling" in text

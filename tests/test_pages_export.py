"""AppTest for the Runs page's "Download and export": every format prepares a file and offers it."""

from __future__ import annotations

import pytest

from cnn_core.runs.exporters import FORMATS
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


@pytest.fixture
def media(monkeypatch) -> list:
    """The in-memory media storage of each AppTest run (AppTest drops it after the run): where
    the browser would fetch a download button's bytes from."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    stores = []

    class Kept(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Kept)
    return stores


def download(at, media: list) -> tuple[str, bytes]:
    """(label, bytes) of the page's one "Download …" button after the last run."""
    (button,) = [el for el in at.get("download_button") if "Download" in el.proto.label]
    return button.proto.label, media[-1].get_file(button.proto.url.rsplit("/", 1)[-1]).content


def test_the_downloaded_onnx_model_loads_alone_and_matches_the_model(tmp_path, media):
    """The bytes of the download button, alone in an empty folder, load in onnxruntime and give
    the checkpoint's outputs; the run folder keeps no hidden side file of the export."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from cnn_core.checkpoints import CHECKPOINT_NAME, run_dir
    from cnn_core.predict import Predictor

    run_id = finished_run(name="onnx", train_size=200, val_size=100)
    at = open_page("pages/runs.py", {"run": run_id})
    next(s for s in at.selectbox if s.label == "Format").set_value("onnx").run()
    next(b for b in at.button if b.label == "Prepare file").click().run()
    label, data = download(at, media)
    assert label == "Download model.onnx"

    alone = tmp_path / "elsewhere"
    alone.mkdir()
    (alone / "model.onnx").write_bytes(data)
    session = ort.InferenceSession(str(alone / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    (got,) = session.run(None, {"images": x.numpy()})
    model = Predictor.from_checkpoint(run_dir(run_id) / CHECKPOINT_NAME).model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert sorted(p.name for p in alone.iterdir()) == ["model.onnx"]
    assert [p.name for p in run_dir(run_id).iterdir() if p.name.startswith(".")] == []


def test_the_download_button_stays_until_prepare_file_is_pressed_again(media):
    """Clicking a download button reruns the page; the prepared file is still offered after it
    (and after any other rerun), and "Prepare file" replaces it."""
    run_id = finished_run(name="twice", train_size=200, val_size=100)
    at = open_page("pages/runs.py", {"run": run_id})
    next(b for b in at.button if b.label == "Prepare file").click().run()
    assert download(at, media)[0] == "Download checkpoint.pt"
    at.run()  # what the download click does
    assert download(at, media)[0] == "Download checkpoint.pt"
    next(s for s in at.selectbox if s.label == "Format").set_value("torchscript").run()
    assert download(at, media)[0] == "Download checkpoint.pt"  # the prepared file, until...
    next(b for b in at.button if b.label == "Prepare file").click().run()
    assert download(at, media)[0] == "Download model.torchscript.pt"

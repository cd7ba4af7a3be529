"""A new dataset is one loader plus one registry entry: a CIFAR-10-shaped fixture (3×32×32,
10 classes) registered here is trained, previewed, browsed, compared and explained by the
unchanged pages, and offered only where its input kind fits."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from cnn_core.checkpoints import describe_checkpoint
from cnn_core.data import DATASETS, DatasetInfo
from cnn_core.data.base import DatasetBundle, ImageSet
from cnn_core.data.splits import finish_bundle
from cnn_core.data.transforms import FolderTransform
from cnn_core.runs import api
from cnn_core.trained import trained_models
from tests.conftest import PROJECT
from tests.run_fixtures import finished_run

NAME = "cifar-shaped"
CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def images(n: int, seed: int) -> ImageSet:
    """``n`` 3×32×32 images whose mean colour depends on their class (learnable)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(CLASSES)
    tint = torch.stack([labels * 25, 250 - labels * 25, (labels * 77) % 256], 1)[..., None, None]
    noise = torch.randint(0, 60, (n, 3, 32, 32), generator=g)
    return ImageSet((tint * 0.75 + noise).clamp(0, 255).to(torch.uint8), labels.long())


def load_cifar_shaped(cfg) -> DatasetBundle:
    """The whole "loader file" of the new dataset."""
    return finish_bundle(
        cfg,
        name=NAME,
        family="objects",
        train=images(300, 1),
        test=images(100, 2),
        class_names=CLASSES,
        transform=FolderTransform(32, bool(cfg.augment)),
        source="test fixture",
    )


@pytest.fixture
def cifar_shaped(monkeypatch):
    """The registry line."""
    info = DatasetInfo(
        NAME,
        "objects",
        "CIFAR-10-shaped fixture",
        load_cifar_shaped,
        in_channels=3,
        num_classes=10,
        input_size=32,
        recognises="objects",
    )
    monkeypatch.setitem(DATASETS, NAME, info)
    return info


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> str:
    return " | ".join(c.value for c in at.caption)


def test_train_page_previews_the_new_geometry(cifar_shaped):
    at = open_page("pages/train.py")
    at.selectbox(key="t_dataset").select(NAME).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Shapes for a 3×32×32 input with 10 classes." in captions(at)
    assert not [t for t in at.text_input if t.label.startswith("Data folder")]


def test_data_page_shows_the_new_dataset(cifar_shaped):
    at = open_page("pages/data.py")
    next(s for s in at.selectbox if s.label == "Dataset").select(NAME).run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "10" and metrics["Test images"] == "100"
    assert "input 3×32×32" in captions(at)


def test_a_run_of_the_new_dataset_is_compared_explained_and_kept_off_draw_and_faces(
    cifar_shaped,
):
    run_id = finished_run(name="cifar run", dataset=NAME, train_size=200, val_size=50)
    checkpoint = describe_checkpoint(api.get_run(run_id)["checkpoint"])
    assert checkpoint["input_kind"] == "dataset"

    at = open_page("pages/compare.py", {"runs": run_id})
    table = at.dataframe[0].value
    assert list(table["id"]) == [run_id] and table["params"].iloc[0] > 0

    at = open_page("pages/explain.py", {"run": run_id, "split": "test", "index": "3"})
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="ex_model").value == run_id
    assert "test #3 · true class: cat" in str(at.image[0].proto)
    assert [m.label for m in at.metric] == ["Predicted class", "Confidence"]

    cifar = next(m for m in trained_models() if m.key == run_id)
    assert cifar.geometry == (3, 32, 10) and cifar.label.endswith("— objects")
    assert run_id not in [m.key for m in trained_models("canvas")]
    assert run_id not in [m.key for m in trained_models("face")]
    at.switch_page("pages/draw.py").run()
    assert not any("cifar run" in o for o in at.selectbox(key="draw_model").options)

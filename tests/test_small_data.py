"""Small-data defaults follow the data: the batch is at most a quarter of the training images
(said on Train), a small folder gets augmentation, more epochs and the BatchNorm net from
"Train on it", Train estimates the run's time, and ``fast`` refuses data it cannot work on."""

from __future__ import annotations

import pytest

from cnn_core.config import TrainConfig
from cnn_core.data import builder
from cnn_core.errors import ConfigError
from cnn_core.recipes import apply_recipe
from cnn_core.resolve import (
    DataSize,
    batch_note,
    data_size,
    resolve,
    small_data_settings,
    training_time,
)
from cnn_core.runs import api
from cnn_core.settings import default_data_dir
from tests.data_fixtures import make_shapes
from tests.run_fixtures import cli_here
from tests.test_builder import split_zip
from tests.test_pages_app import no_worker, open_page  # noqa: F401 - the fixture is used

__all__ = ["no_worker"]


def shapes_config(**values) -> TrainConfig:
    make_shapes(default_data_dir() / "shapes")
    return TrainConfig(dataset="image-folder", data_dir="shapes", **values)


def test_a_small_folder_gets_a_quarter_batch_and_augmentation_at_resolve():
    config = shapes_config()
    assert data_size(config) == DataSize(train=34, val=6)
    run = resolve(config)
    assert (run.batch_size, run.augment) == (8, True)
    assert resolve(run) == run
    assert resolve(shapes_config(augment=False)).augment is False  # an explicit choice stays
    assert batch_note(shapes_config(batch_size=32)) == (
        "Batch size 32 is more than a quarter of the 34 training images: the run uses 8 "
        "(at least 4 steps an epoch)."
    )
    assert batch_note(shapes_config(batch_size=8)) == ""
    assert data_size(TrainConfig(dataset="mnist")) is None  # no cheap count: nothing changes
    assert resolve(TrainConfig(dataset="mnist", train_size=100)).batch_size == 25


def test_small_data_settings_and_the_time_estimate():
    config = shapes_config()
    settings = small_data_settings(config)
    assert settings == {"model": "v5", "augment": True, "batch_size": 8, "epochs": 100}
    took = training_time(TrainConfig(**{**config.__dict__, **settings}), 0.01)
    assert took.seconds == pytest.approx(100 * (5 + 1 / 3) * 0.01)
    assert small_data_settings(TrainConfig(dataset="fashion-mnist")) == {}


def test_given_splits_count_without_decoding():
    builder.import_zip("pets", split_zip())
    config = TrainConfig(dataset="image-folder", data_dir="datasets/pets")
    assert data_size(config) == DataSize(train=10, val=2)


def test_fast_refuses_small_data_with_one_line(capsys):
    with pytest.raises(ConfigError, match="fast needs at least 5,000 training images") as err:
        apply_recipe("fast", shapes_config().__dict__)
    assert err.value.field == "recipe" and "this data has 34" in str(err.value)
    assert apply_recipe("fast", {"dataset": "fashion-mnist"})["batch_size"] == 256
    code, _, stderr = cli_here(
        capsys,
        "train",
        "--dataset",
        "image-folder",
        "--data-dir",
        str(default_data_dir() / "shapes"),  # typed on the command line: the user's own path
        "--recipe",
        "fast",
    )
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "fast needs" in stderr


def test_train_on_it_fills_small_data_settings_notes_the_clamp_and_estimates(no_worker):  # noqa: F811
    make_shapes(default_data_dir() / "datasets" / "shapes")
    at = open_page("pages/dataset_builder.py")
    at.button(key="yd_train").click().run()
    assert at.title[0].value == "Train" and not at.exception
    assert at.selectbox(key="t_model").value == "v5"
    assert at.number_input(key="t_batch_size").value == 8
    assert at.number_input(key="t_epochs").value == 100
    assert at.checkbox(key="t_augment").value is True
    assert any(c.value.startswith("Estimated time here: about") for c in at.caption)
    at.switch_page("pages/train.py")  # stay on Train for the next reruns
    at.number_input(key="t_batch_size").set_value(32).run()
    assert any("the run uses 8" in i.value for i in at.info)
    at.selectbox(key="t_recipe").select("fast").run()
    assert "fast needs at least 5,000 training images" in at.error[0].value
    assert at.number_input(key="t_batch_size").value == 32  # the preset was not applied
    at.button[0].click().run()
    (run,) = api.list_runs()
    assert run["config"]["batch_size"] == 8 and run["config"]["split_version"] == 1

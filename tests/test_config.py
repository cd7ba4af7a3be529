"""TrainConfig is a value described by its fields' Knobs; resolve() runs once at run creation;
DataSpec says which images a run saw, the same way for Compare, Explain and the CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnn_core import compare, config
from cnn_core.checkpoints import load_checkpoint, save_checkpoint
from cnn_core.cli import build_parser, main
from cnn_core.cli.common import config_from_args
from cnn_core.config import TrainConfig, knob, knobs
from cnn_core.data import DataSpec, load_dataset
from cnn_core.data.choices import save_choices
from cnn_core.errors import ConfigError
from cnn_core.evaluation import checkpoint_data, run_data_spec
from cnn_core.predict import Predictor
from cnn_core.resolve import resolve
from cnn_core.runs import api
from cnn_core.runs.store import RunStore
from cnn_core.settings import default_data_dir
from cnn_core.sweeps.space import default_space, searchable, validate_space
from cnn_core.trained import trained_models
from tests.conftest import PROJECT
from tests.data_fixtures import make_image_folder
from tests.run_fixtures import run_here
from tests.test_pages_app import no_worker, open_page  # noqa: F401 - the fixture is used

README = PROJECT / "README.md"


# ---- a value: validate() and from_dict() alone ---------------------------------------------
def test_validate_and_from_dict_import_no_registry_and_read_no_file():
    code = (
        "import sys, builtins, pathlib\n"
        "from cnn_core.config import TrainConfig\n"
        "def refuse(*a, **k): raise AssertionError('I/O in a config check')\n"
        "builtins.open = refuse; pathlib.Path.is_file = refuse; pathlib.Path.exists = refuse\n"
        "c = TrainConfig.from_dict({'dataset': 'image-folder', 'data_dir': 'x', 'model': 'mine'})\n"
        "c.validate(); TrainConfig(epochs=0).errors()\n"
        "print(sorted(m for m in sys.modules if m.startswith('cnn_core')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.replace("'", '"')) == [
        "cnn_core",
        "cnn_core.config",
        "cnn_core.errors",
    ]


def test_resolve_is_idempotent_and_names_the_bad_field():
    base = TrainConfig(dataset="fashion-mnist", epochs=1)
    once = resolve(base)
    assert once == resolve(base) == resolve(once)
    assert (once.batch_size, once.augment, once.data_choices) == (64, False, 0)
    assert base.batch_size is None  # the config given is not changed
    for field, value, message in [
        ("dataset", "imagenet", "unknown dataset 'imagenet'"),
        ("model", "v99", "unknown model 'v99'"),
    ]:
        bad = dataclasses.replace(base, **{field: value})
        bad.validate()  # each field alone is fine: names are the registries' business
        with pytest.raises(ConfigError) as info:
            resolve(bad)
        assert info.value.field == field and message in info.value.message
    with pytest.raises(ConfigError, match="attribute: unknown attribute 'Grinning'"):
        resolve(TrainConfig(dataset="celeba", attribute="Grinning"))


# ---- one DataSpec for every reader of a run --------------------------------------------------
def _folder_run(name: str) -> tuple[str, Path]:
    root = make_image_folder(
        default_data_dir() / name, ("a", "b", "c"), n_per_class=12, size=(16, 16)
    )
    config = TrainConfig(
        dataset="image-folder", data_dir=name, image_size=16, epochs=1, threads=1, batch_size=8,
        val_size=12, model="v5",
    )  # fmt: skip
    run_id = api.submit(config, start_worker=False)
    assert run_here(run_id) == 0
    return run_id, root


def _images(bundle) -> tuple[torch.Tensor, torch.Tensor]:
    return bundle.train.images, bundle.val.images


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_images(a), _images(b), strict=True))


def _cli_accuracy(capsys, checkpoint: str) -> float:
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", checkpoint, "--split", "val", "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"]


def test_compare_explain_and_cli_see_the_images_the_run_trained_on(capsys):
    """Issue 26 item 1: Compare loaded the latest exclude/relabel choices of a folder, the CLI
    the pinned ones; after 10 images were excluded the same run scored other images."""
    run_id, root = _folder_run("pinned")
    run = api.get_run(run_id)
    assert run["config"]["data_choices"] == 0
    trained_on = load_dataset(DataSpec.of(run["config"]))
    cli_before = _cli_accuracy(capsys, run["checkpoint"])
    excluded = {f"{c}/{i}.png" for c in "ab" for i in range(5)}
    assert save_choices(root, excluded, {}).version == 1

    compare_data = load_dataset(run_data_spec(run["config"]))  # Compare and its cache
    (option,) = [m for m in trained_models() if m.key == run_id]
    explain_data = load_dataset(run_data_spec(option.config))  # Explain's data path
    cli_data = checkpoint_data(Predictor.from_checkpoint(run["checkpoint"]))  # evaluate
    for data in (compare_data, explain_data, cli_data):
        assert _same(data, trained_on)
    compared = compare.evaluate_run(run_id, "val").result.accuracy
    assert compared == _cli_accuracy(capsys, run["checkpoint"]) == cli_before
    new_run = resolve(TrainConfig(**{**run["config"], "data_choices": None}))
    assert new_run.data_choices == 1  # a run created now applies the saved choices
    seen_now = load_dataset(DataSpec.of(new_run))
    assert (
        len(seen_now.train) + len(seen_now.val) == len(trained_on.train) + len(trained_on.val) - 10
    )


def test_a_run_stored_before_pinning_keeps_its_images(capsys):
    """A stored config with ``data_choices: None`` saw no choices: choices saved later do not
    change what evaluating it reads (it used to mean "the latest")."""
    run_id, root = _folder_run("legacy")
    run = api.get_run(run_id)
    legacy = {**run["config"], "data_choices": None}
    RunStore().update(run_id, config=legacy)  # the row as a store written before pinning
    payload = load_checkpoint(run["checkpoint"])
    payload["config"] = legacy
    save_checkpoint(run["checkpoint"], payload)
    trained_on = load_dataset(DataSpec.of(run["config"]))
    before = _cli_accuracy(capsys, run["checkpoint"])
    save_choices(root, {f"a/{i}.png" for i in range(10)}, {})
    assert api.get_run(run_id)["config"]["data_choices"] is None
    assert _same(load_dataset(run_data_spec(api.get_run(run_id)["config"])), trained_on)
    assert _cli_accuracy(capsys, run["checkpoint"]) == before


# ---- each knob described once ------------------------------------------------------------------
def test_the_readme_holds_the_current_options_table(capsys):
    assert main(["options"]) == 0
    table = capsys.readouterr().out.strip()
    assert table.startswith("| option | default | allowed |") and "`--lr`" in table
    assert table in README.read_text(), (
        "README's options table is stale: python -m cnn_core options"
    )


def test_sweep_bounds_and_choices_are_the_config_knobs():
    space, k = default_space(), knobs()
    assert set(space) == set(searchable()) == {n for n, kb in k.items() if kb.search}
    assert space["lr"] == k["lr"].search and space["dropout"]["high"] <= k["dropout"].high
    assert space["optimizer"]["choices"] == list(k["optimizer"].choices)
    base = resolve(TrainConfig(dataset="fashion-mnist"))
    with pytest.raises(ConfigError, match="dropout: must be between 0 and 0.95"):
        validate_space({"dropout": {"low": 0.0, "high": 0.96}}, base)
    with pytest.raises(ConfigError, match="lr: must be between 1e-07 and 10"):
        validate_space({"lr": {"low": 1e-4, "high": 20.0, "log": True}}, base)


def test_a_sweep_range_of_an_unsettable_field_needs_both_ends():
    """batch_size may be unset (the dataset's default), yet a range needs numbers at both ends:
    a missing end is named, not a TypeError."""
    base = resolve(TrainConfig(dataset="fashion-mnist"))
    for spec in ({"high": 128}, {"low": 16}, {"low": 16, "high": None}):
        with pytest.raises(ConfigError, match="batch_size: a range needs both low and high"):
            validate_space({"batch_size": spec}, base)


def test_sweep_page_widgets_take_the_knobs_bounds():
    at = open_page("pages/sweep.py")
    dropout = at.slider(key="sw_space_dropout").proto
    assert (dropout.min, dropout.max) == (knobs()["dropout"].low, knobs()["dropout"].high)
    for key in ("sw_space_lr_low", "sw_space_lr"):
        lr = at.number_input(key=key).proto
        assert (lr.min, lr.max) == (knobs()["lr"].low, knobs()["lr"].high)


@pytest.fixture
def my_config(monkeypatch):
    """A TrainConfig subclass with one more field, put where the config class is looked up."""
    extended = dataclasses.make_dataclass(
        "Extended",
        [
            (
                "my_field",
                int,
                knob(
                    3,
                    help="a test knob",
                    low=1,
                    high=9,
                    group="Hyperparameters",
                    label="My field",
                    search={"low": 1, "high": 5, "log": False},
                ),
            )
        ],  # fmt: skip
        bases=(TrainConfig,),
    )
    monkeypatch.setattr(config, "TrainConfig", extended)
    return extended


def test_a_new_field_is_validated_on_the_cli_the_train_page_and_sweep(my_config, no_worker, capsys):  # noqa: F811
    """Adding a field is one edit: its declaration with a Knob."""
    assert my_config(my_field=10).errors() == {"my_field": "must be between 1 and 9, got 10"}
    args = build_parser().parse_args(["train", "--my-field", "7", "--dataset", "fashion-mnist"])
    assert config_from_args(args).my_field == 7
    assert main(["train", "--my-field", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: my_field: must be between 1 and 9, got 0"

    at = open_page("pages/train.py")
    widget = at.number_input(key="t_my_field")
    assert widget.label == "My field" and widget.value == 3
    widget.set_value(12).run()
    assert any(e.value.startswith("my_field: must be between 1 and 9") for e in at.error)
    at.number_input(key="t_my_field").set_value(5).run()
    next(b for b in at.button if b.label == "Launch training").click().run()
    (run,) = api.list_runs()
    assert run["config"]["my_field"] == 5

    assert searchable()["my_field"] == "int" and default_space()["my_field"]["high"] == 5
    base = resolve(my_config(dataset="fashion-mnist"))
    assert validate_space({"my_field": {"low": 2, "high": 4}}, base)["my_field"]["low"] == 2
    with pytest.raises(ConfigError, match="my_field"):
        validate_space({"my_field": {"choices": [20]}}, base)
    sweep = open_page("pages/sweep.py")
    assert sweep.toggle(key="sw_on_my_field").label == "My field"

"""Recipe fields and presets: validation (one clear message naming the field), the schedules'
shape, presets expanding into stored fields, the CLI flags and time to target in the run
store, ``train --json``, ``runs show --json`` and ``get_run``."""

from __future__ import annotations

import math
import shlex

import pytest

from cnn_core import schedule
from cnn_core.cli import main
from cnn_core.cli.common import config_from_args
from cnn_core.config import TrainConfig, field_type, knobs
from cnn_core.errors import ConfigError
from cnn_core.recipes import RECIPES, apply_recipe, recipe_fields
from cnn_core.runs import api
from tests.run_fixtures import cli_here

SMALL = shlex.split(
    "--dataset fashion-mnist --epochs 2 --train-size 400 --val-size 200 --threads 1 --quiet --json"
)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lr_schedule", "triangle", "must be one of constant, onecycle, cosine"),
        ("target_accuracy", 0.0, "must be in (0, 1]"),
        ("target_accuracy", 1.5, "must be in (0, 1]"),
        ("label_smoothing", 1.0, "must be in [0, 1)"),
        ("label_smoothing", -0.1, "must be in [0, 1)"),
        ("evals_per_epoch", 0, "between 1 and 20"),
        ("evals_per_epoch", 21, "between 1 and 20"),
        ("warmup", 0.95, "between 0 and 0.9"),
        ("precision", "fp8", "must be one of"),
    ],
)
@pytest.mark.fast
def test_bad_recipe_fields_name_the_field(field, value, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value}).validate()
    assert info.value.field == field and message in info.value.message


@pytest.mark.fast
def test_knob_bounds_are_the_bounds_validate_uses():
    bounded = {n: k for n, k in knobs().items() if k.low is not None and not k.open_end}
    assert {"epochs", "lr", "dropout", "seed", "data_choices"} <= set(bounded)
    for name, k in bounded.items():
        kind, _ = field_type(name)
        TrainConfig(**{name: kind(k.low)}).validate()
        TrainConfig(**{name: kind(k.high)}).validate()
        below = k.low - (1 if kind is int else 1e-9)
        with pytest.raises(ConfigError, match=name):
            TrainConfig(**{name: kind(below) if kind is int else below}).validate()


def test_every_recipe_is_checked_against_the_fields():
    from cnn_core.recipes import check_recipes

    check_recipes(RECIPES)
    with pytest.raises(ConfigError, match="lr: must be between"):
        check_recipes({"broken": {"lr": 50.0}})
    with pytest.raises(ConfigError, match="learning_rate: recipe 'typo' sets a field"):
        check_recipes({"typo": {"learning_rate": 1e-3}})


def test_schedules_rise_then_fall_to_zero():
    total = 100
    for name in ("onecycle", "cosine"):
        lrs = [schedule.lr_factor(name, 0.2, s, total) for s in range(total)]
        peak = lrs.index(max(lrs))
        assert peak == 19 and max(lrs) == pytest.approx(1.0)
        assert lrs[:20] == sorted(lrs[:20]) and lrs[20:] == sorted(lrs[20:], reverse=True)
        assert lrs[-1] < 0.02
    assert schedule.lr_factor("onecycle", 0.2, 0, total) > schedule.ONECYCLE_START
    assert {schedule.lr_factor("constant", 0.2, s, total) for s in range(total)} == {1.0}
    assert schedule.lr_factor("cosine", 0.0, 0, total) == 1.0  # no warm-up: starts at the peak


def test_schedule_values_and_the_state_a_checkpoint_stores():
    """Exact factors over 10 steps with a 20 % warm-up (2 steps): onecycle rises from lr/25 and
    falls linearly, cosine rises from 0 and falls along half a cosine; no total: constant."""
    onecycle = [schedule.lr_factor("onecycle", 0.2, s, 10) for s in (0, 1, 2, 4, 6)]
    assert onecycle == pytest.approx([1 / 25 + 24 / 25 / 2, 1.0, 1.0, 0.75, 0.5])
    cosine = [schedule.lr_factor("cosine", 0.2, s, 10) for s in (0, 1, 2, 4, 6)]
    assert cosine == pytest.approx([0.5, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5])
    assert schedule.lr_factor("onecycle", 0.0, 5, 0) == 1.0
    assert schedule.describe("onecycle", 0.2, 4, 10, 0.01) == {
        "schedule": "onecycle",
        "warmup": 0.2,
        "step": 4,
        "total_steps": 10,
        "lr": pytest.approx(0.0075),
    }


def test_presets_expand_into_fields_and_explicit_values_win():
    assert apply_recipe("fast", {"lr": 0.01})["lr"] == 0.01
    fast = TrainConfig.from_dict(apply_recipe("fast", {"dataset": "fashion-mnist"}))
    assert fast.lr_schedule == "onecycle" and fast.model == RECIPES["fast"]["model"]
    book = TrainConfig.from_dict(apply_recipe("book", {}))
    assert book.to_dict() == TrainConfig().to_dict()  # the book's recipe is the default
    with pytest.raises(ConfigError) as info:
        recipe_fields("turbo")
    assert info.value.field == "recipe"


def test_cli_flags_and_recipe_build_the_config():
    from cnn_core.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--recipe", "fast", "--label-smoothing", "0.2", "--target-accuracy", "0.9"]
    )
    cfg = config_from_args(args)
    assert cfg.label_smoothing == 0.2 and cfg.target_accuracy == 0.9
    assert (
        cfg.lr_schedule == "onecycle" and cfg.evals_per_epoch == RECIPES["fast"]["evals_per_epoch"]
    )
    assert "recipe" not in cfg.to_dict()  # the run stores the fields, not the preset's name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "turbo"], "error: recipe: unknown recipe 'turbo'"),
        (["--lr-schedule", "step"], "error: lr_schedule: must be one of"),
        (["--target-accuracy", "0"], "error: target_accuracy: must be in (0, 1]"),
        (["--label-smoothing", "1"], "error: label_smoothing: must be in [0, 1)"),
        (["--evals-per-epoch", "50"], "error: evals_per_epoch: must be between 1 and 20"),
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, args, message):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1


def test_train_stops_at_target_and_reports_time_to_target(isolated_dirs, capsys):
    code, out, _ = cli_here(
        capsys, "train", *SMALL, "--evals-per-epoch", "4", "--target-accuracy", "0.3"
    )
    assert code == 0 and out["status"] == "completed" and out["target_status"] == "reached target"
    assert out["time_to_target_s"] > 0 and 0 < out["images_to_target"] < 2 * 400
    assert out["val_accuracy"] >= 0.3
    run = api.get_run(out["run_id"])  # what `runs show --json` and the Runs page read
    assert run["status"] == "completed" and run["checkpoint"]
    for key in ("target_status", "time_to_target_s", "images_to_target", "target_accuracy"):
        assert run[key] == pytest.approx(out[key]) if isinstance(out[key], float) else out[key]
    assert all(m["epoch"] >= 1 for m in api.metrics(out["run_id"]))  # no fake epoch 0
    code, shown, _ = cli_here(capsys, "runs", "show", out["run_id"], "--json")
    assert shown["time_to_target_s"] == pytest.approx(out["time_to_target_s"])


def test_unreached_target_runs_every_epoch_marked_not_reached(isolated_dirs, capsys):
    code, out, _ = cli_here(capsys, "train", *SMALL, "--target-accuracy", "1.0")
    assert code == 0 and out["status"] == "completed" and len(out["history"]) == 2
    assert out["target_status"] == "target not reached"
    assert out["time_to_target_s"] is None and out["images_to_target"] is None
    plain = cli_here(capsys, "train", *SMALL)[1]
    assert plain["target_status"] is None and plain["time_to_target_s"] is None

"""What every command shares: JSON/text output, the runs-dir option, sub-command registration,
and the training options, generated from :class:`~cnn_core.config.TrainConfig`'s fields (as
nanoGPT's configurator reads its config), so a new config field appears on the CLI by itself."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

from ..config import CHOICES, TrainConfig

HELP = {
    "dataset": "dataset name (see `datasets`)",
    "data_dir": "folder holding the dataset (relative to the current folder, or absolute)",
    "attribute": "CelebA attribute name (default Smiling)",
    "model": "architecture (see `models`)",
    "threads": "torch threads (0 = all cores)",
    "workers": "data-parallel workers for one run (with --executor ray)",
    "tags": "a tag (repeatable)",
    "name": "a name for the run",
    "lr_schedule": "constant (the book), onecycle or cosine",
    "warmup": "fraction of the run warming the lr up (onecycle, cosine)",
    "label_smoothing": "in [0, 1); 0 = none (the book)",
    "evals_per_epoch": "validations per epoch (1-20)",
    "target_accuracy": "stop once validation accuracy reaches it, in (0, 1]",
    **dict.fromkeys(
        ("batch_size", "augment", "train_size", "val_size", "image_size"),
        "default: the dataset's (see `datasets --json`)",
    ),
}


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print ``payload`` as one JSON line with --json, else the human-readable ``text``."""
    print(json.dumps(payload, default=float) if getattr(args, "json", False) else text)


def _option_type(hint: Any) -> tuple[type | None, bool]:
    """(the scalar type, whether None is allowed) of a field's annotation."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else None), True
    return hint, False


def config_options() -> dict[str, dict[str, Any]]:
    """``{field: argparse keyword arguments}`` for every TrainConfig field the CLI can take
    (scalar fields and the tag list; structured fields get options of their own)."""
    hints = typing.get_type_hints(TrainConfig)
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(TrainConfig):
        kind, _ = _option_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = HELP.get(f.name, f"default {default}" if default not in (None, "") else None)
        if kind is bool:
            out[f.name] = {"action": argparse.BooleanOptionalAction, "default": None}
        elif kind in (int, float, str):
            choices = CHOICES.get(f.name)  # shown, and checked by the config (one clear line)
            out[f.name] = {
                "type": kind,
                "metavar": "{" + ",".join(choices) + "}" if choices else None,
            }
        elif typing.get_origin(hints[f.name]) is list:
            out[f.name] = {"action": "append", "flag": "--tag" if f.name == "tags" else None}
        else:
            continue
        out[f.name]["help"] = help_text
    return out


def add_config_args(p: argparse.ArgumentParser) -> None:
    """The TrainConfig fields as options (unset options keep the config defaults), and
    ``--model-spec`` for a custom architecture (stored in the config as ``model_spec``)."""
    for name, kwargs in config_options().items():
        kwargs = dict(kwargs)
        flag = kwargs.pop("flag", None) or "--" + name.replace("_", "-")
        p.add_argument(flag, dest=name, **{k: v for k, v in kwargs.items() if v is not None})
    p.add_argument(
        "--model-spec",
        metavar="FILE",
        help="a JSON architecture spec file (see `models --spec v1`)",
    )
    p.add_argument("--recipe", help="preset filling the fields not given: book (default) or fast")


def given_config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given explicitly on the command line, with their values."""
    return {k: getattr(args, k) for k in config_options() if getattr(args, k, None) is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A validated TrainConfig from the options that were given (``--data-dir`` stored as the
    absolute folder it names; a ``--model-spec`` file is checked against the dataset's input
    shape and stored whole in the config)."""
    from ..recipes import apply_recipe
    from ..settings import cli_path

    values = given_config_fields(args)
    if values.get("data_dir"):  # the worker reads it from another folder
        values["data_dir"] = str(cli_path(values["data_dir"], "--data-dir"))
    if getattr(args, "recipe", None):
        values = apply_recipe(args.recipe, values)
    if getattr(args, "model_spec", None):
        dataset = values.get("dataset", TrainConfig.dataset)
        values["model_spec"] = spec_file_for(args.model_spec, dataset, values.get("image_size"))
        values.setdefault("model", values["model_spec"]["name"])
    return TrainConfig.from_dict(values)


def spec_file_for(path: str, dataset: str, image_size: int | None = None) -> dict[str, Any]:
    """A spec file typed on the command line, checked for the dataset's input shape (SpecError
    naming the layer)."""
    from ..data import input_geometry
    from ..models.saved import read_spec_file
    from ..models.spec import analyze
    from ..settings import cli_path

    spec = read_spec_file(cli_path(path, "spec file"))
    analyze(spec, *input_geometry(dataset, image_size))
    return spec


def add_runs_dir(p: argparse.ArgumentParser) -> None:
    """``--runs-dir`` (where runs and checkpoints live) and ``--json``."""
    p.add_argument(
        "--runs-dir", help="checkpoints folder (default: ./checkpoints or $CNN_LAB_RUNS_DIR)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")


def add_subcommand(
    commands: argparse._SubParsersAction, name: str, func, text: str, *, id_arg: str | None
) -> argparse.ArgumentParser:
    """A sub-command running ``func``, with a positional ``id_arg`` (None: no id),
    ``--runs-dir`` and ``--json``."""
    p = commands.add_parser(name, help=text)
    if id_arg:
        p.add_argument(id_arg)
    add_runs_dir(p)
    p.set_defaults(func=func)
    return p


def apply_runs_dir(args: argparse.Namespace) -> None:
    """Make ``--runs-dir`` the runs folder of this process and the workers it starts."""
    if getattr(args, "runs_dir", None):
        os.environ["CNN_LAB_RUNS_DIR"] = str(Path(args.runs_dir).expanduser().resolve())

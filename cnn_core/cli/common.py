"""What every command shares: JSON/text output, the runs-dir option, sub-command registration,
and the training options, generated from the config class's fields and their Knobs (as
nanoGPT's configurator reads its config), so a new config field appears on the CLI by itself."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from .. import config


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print ``payload`` as one JSON line with --json, else the human-readable ``text``."""
    print(json.dumps(payload, default=float) if getattr(args, "json", False) else text)


def config_options() -> dict[str, dict[str, Any]]:
    """``{field: argparse keyword arguments}`` for every field of the config class the CLI can
    take (scalar fields and the tag list; structured fields get options of their own), help
    and choices from each field's Knob."""
    cls = config.config_class()
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        knob = config.knobs(cls).get(f.name)
        if knob is None:
            continue
        kind, _ = config.field_type(f.name, cls)
        if kind is bool:
            out[f.name] = {"action": argparse.BooleanOptionalAction, "default": None}
        elif kind in (int, float, str):
            choices = knob.choices  # shown, and checked by the config (one clear line)
            out[f.name] = {
                "type": kind,
                "metavar": "{" + ",".join(choices) + "}" if choices else None,
            }
        elif kind is list:
            out[f.name] = {"action": "append", "flag": "--tag" if f.name == "tags" else None}
        else:
            continue
        out[f.name]["help"] = _help(knob, f)
    return out


def _help(knob: config.Knob, f: dataclasses.Field) -> str:
    """A field's help text, with its default and allowed values."""
    default = f.default if f.default is not dataclasses.MISSING else None
    if knob.dataset_default:
        default = "the dataset's (see `datasets --json`)"
    extra = [f"default {default}" if default not in (None, "") else "", knob.allowed()]
    return "; ".join([knob.help, *(e for e in extra if e and e not in knob.help)])


def option_flag(name: str) -> str:
    """The command-line flag of config field ``name``."""
    return config_options()[name].get("flag") or "--" + name.replace("_", "-")


def options_table() -> str:
    """The README's table of training options (a Markdown table), from the fields' Knobs."""
    cls = config.config_class()
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    rows = ["| option | default | allowed | what it sets |", "| --- | --- | --- | --- |"]
    for name in config_options():
        knob = config.knobs(cls)[name]
        default = defaults[name]
        if knob.dataset_default:
            shown = "the dataset's"
        elif default in (None, "", dataclasses.MISSING):  # the tags' default is a factory
            shown = "—"
        else:
            shown = f"`{default}`"
        rows.append(f"| `{option_flag(name)}` | {shown} | {knob.allowed()} | {knob.help} |")
    return "\n".join(rows)


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


def config_from_args(args: argparse.Namespace) -> config.TrainConfig:
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
        dataset = values.get("dataset", config.config_class().dataset)
        values["model_spec"] = spec_file_for(args.model_spec, dataset, values.get("image_size"))
        values.setdefault("model", values["model_spec"]["name"])
    return config.config_class().from_dict(values)


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

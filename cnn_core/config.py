"""TrainConfig: the description of a training run, a plain value (stored with every run).

Each field carries its own facts in ``dataclasses.field(metadata={"knob": Knob(...)})``: help
text, range and open end, choices, Train-page group and widget hints, and whether a sweep may
search it. ``validate()`` checks every field alone from them (no registry, no I/O); the CLI,
the Train and Sweep pages, the sweep space, Compare's columns, the recipes and the README's
options table all read them (:func:`knobs`). Names are checked against the registries, dataset
defaults filled and the saved spec and data-choices version pinned by
:func:`cnn_core.resolve.resolve`, once, when a run is created.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

GROUPS = ("Data", "Hyperparameters", "Run")  # the Train page's groups, in page order


@dataclass(frozen=True)
class Knob:
    """What one TrainConfig field means and how it may be set.

    The value's type (and whether None is allowed) is the field's annotation. ``low``/``high``
    bound numbers (``open_end`` "low" or "high" excludes that end); ``choices`` is a fixed set;
    ``names`` says the value names an entry of a registry ("datasets", "models"), checked by
    ``resolve()``; ``dataset_default``: None takes the dataset's default at ``resolve()``.
    ``group`` places the field on the Train page (None: not asked there), with ``label``,
    ``widget`` ("slider"; "" = from the type), ``step`` and ``format``; ``zero_unsets``: the
    widget's 0 means None; ``show_if``: the dataset registry entry's attribute that must be
    true for the page to ask. ``search`` is the default sweep search (``{"low", "high",
    "log"}`` or ``{"choices": [...]}``, ``"choices": None`` meaning every allowed value: the
    choices or the registry's names; None: not searchable), ``search_options`` the values
    the Sweep page offers (default: ``choices``). ``setting`` False marks run metadata (name,
    tags, the spec), not a training setting (Compare's columns are the settings).
    """

    help: str
    low: float | None = None
    high: float | None = None
    open_end: str | None = None
    choices: tuple[Any, ...] = ()
    names: str | None = None
    min_length: int = 0
    max_length: int | None = None
    dataset_default: bool = False
    group: str | None = None
    label: str = ""
    widget: str = ""
    step: float | None = None
    format: str | None = None
    zero_unsets: bool = False
    show_if: str | None = None
    search: dict[str, Any] | None = None
    search_options: tuple[Any, ...] = ()
    setting: bool = True

    def allowed(self) -> str:
        """The values allowed, as text: ``1–1,000``, ``[0, 1)``, ``adam, adamw, sgd``."""
        if self.choices:
            return ", ".join(map(str, self.choices))
        if self.names:
            return f"a name from `{self.names}`"
        if self.max_length:
            return f"at most {self.max_length} characters"
        if self.low is None or self.high is None:
            return ""
        lo, hi = _number(self.low), _number(self.high)
        if self.open_end:
            left = "(" if self.open_end == "low" else "["
            return f"{left}{lo}, {hi}{')' if self.open_end == 'high' else ']'}"
        return f"{lo}–{hi}"


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1000 else f"{x:g}"


def knob(default: Any = dataclasses.MISSING, *, factory: Any = None, **facts: Any) -> Any:
    """A dataclass field described by ``Knob(**facts)`` (``factory``: a default factory)."""
    meta = {"knob": Knob(**facts)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything needed to reproduce a run. ``None`` fields marked ``dataset_default`` take
    the dataset's default in ``resolve()`` (the book's recipe: Adam 1e-3, batch 64 for digits
    / 32 for faces)."""

    dataset: str = knob(
        "mnist", help="the images to learn from", names="datasets", min_length=1,
        group="Data", label="Dataset",
    )  # fmt: skip
    data_dir: str | None = knob(
        None, help="folder holding the dataset (inside the allowed data roots)", group="Data",
        label="Data folder (inside the allowed data roots)", show_if="needs_data_dir",
    )  # fmt: skip
    attribute: str = knob(
        "Smiling", help="the attribute a faces dataset learns (default Smiling)", min_length=1,
        group="Data", label="Attribute", show_if="attributes",
    )  # fmt: skip
    image_size: int | None = knob(
        None, help="side of the model input in pixels", low=8, high=512,
        dataset_default=True, group="Data", label="Image size (pixels)",
        show_if="user_image_size",
    )  # fmt: skip
    train_size: int | None = knob(
        None, help="training images", low=1, high=10_000_000,
        dataset_default=True, group="Data", label="Training images (0 = dataset default)",
        zero_unsets=True, step=1000,
    )  # fmt: skip
    val_size: int | None = knob(
        None, help="validation images", low=1, high=10_000_000,
        dataset_default=True, group="Data",
        label="Validation images (0 = default: 1/6 held out)", zero_unsets=True, step=500,
    )  # fmt: skip
    test_size: int | None = knob(
        None, help="test images of a dataset whose test split is a sample of its test "
        "partition (CelebA; default as many as validation; more than there are: all of them)",
        low=1, high=10_000_000, group="Data", label="Test images (0 = as many as validation)",
        zero_unsets=True, step=1000, show_if="sampled_test",
    )  # fmt: skip
    augment: bool | None = knob(
        None, help="random shifts / crops + flips while training",
        dataset_default=True, group="Data", label="Augmentation",
        search={"choices": [False, True]},
    )  # fmt: skip
    balance: str = knob(
        "none", help="class balancing", choices=("none", "undersample", "weighted"),
        group="Data", label="Class balancing",
    )  # fmt: skip
    model: str = knob(
        "v1", help="the architecture (or a saved spec's name)", names="models", min_length=1,
        label="Model", search={"choices": None},
    )  # fmt: skip
    epochs: int = knob(
        8, help="passes over the training images", low=1, high=1000,
        group="Hyperparameters", label="Epochs",
    )  # fmt: skip
    batch_size: int | None = knob(
        None, help="images per step", low=1, high=4096,
        dataset_default=True, group="Hyperparameters", label="Batch size",
        search={"choices": [32, 64, 128]}, search_options=(16, 32, 64, 128, 256),
    )  # fmt: skip
    lr: float = knob(
        1e-3, help="learning rate (the peak one with a schedule)", low=1e-7, high=10.0,
        group="Hyperparameters", label="Learning rate", step=1e-4, format="%.5f",
        search={"low": 1e-4, "high": 1e-2, "log": True},
    )  # fmt: skip
    optimizer: str = knob(
        "adam", help="optimizer (muon: Muon's orthogonalised momentum for the convolution "
        "filters at muon_lr, Adam at lr for the other weights)",
        choices=("adam", "adamw", "sgd", "muon"), group="Hyperparameters", label="Optimizer",
        search={"choices": None},
    )  # fmt: skip
    muon_lr: float = knob(
        0.05, help="learning rate of the convolution filters with optimizer muon (the peak "
        "one with a schedule)", low=1e-5, high=1.0, group="Hyperparameters",
        label="Muon learning rate (optimizer muon)", step=0.005, format="%.4f",
    )  # fmt: skip
    weight_decay: float = knob(
        0.0, help="weight decay", low=0.0, high=1.0, group="Hyperparameters",
        label="Weight decay", step=1e-4, format="%.5f",
        search={"choices": [0.0, 1e-5, 1e-4, 1e-3]}, search_options=(0.0, 1e-5, 1e-4, 1e-3, 1e-2),
    )  # fmt: skip
    dropout: float = knob(
        0.5, help="dropout probability of the models' dropout layers", low=0.0, high=0.95,
        group="Hyperparameters", label="Dropout", widget="slider", step=0.05,
        search={"low": 0.0, "high": 0.6, "log": False},
    )  # fmt: skip
    lr_schedule: str = knob(
        "constant", help="constant (the book), onecycle or cosine (span the whole run)",
        choices=("constant", "onecycle", "cosine"), group="Hyperparameters",
        label="LR schedule", search={"choices": None},
    )  # fmt: skip
    warmup: float = knob(
        0.0, help="fraction of the run warming the lr up (onecycle, cosine)", low=0.0, high=0.9,
        group="Hyperparameters", label="Warm-up (fraction of the run)", step=0.05,
        search={"choices": [0.0, 0.1, 0.25]},
    )  # fmt: skip
    whiten: bool = knob(
        False, help="patch whitening: the first convolution's filters are computed from the "
        "training images' patch covariance and frozen", group="Hyperparameters",
        label="Patch-whitening first convolution", search={"choices": [False, True]},
    )  # fmt: skip
    ema: float = knob(
        0.0, help="decay per step of an average of the weights, which is validated, saved and "
        "used (0 = off; 0.99 averages about the last 100 steps)", low=0.0, high=1.0,
        open_end="high", group="Hyperparameters", label="Weight averaging (EMA decay, 0 = off)",
        step=0.01, format="%.3f", search={"choices": [0.0, 0.99]},
    )  # fmt: skip
    label_smoothing: float = knob(
        0.0, help="label smoothing; 0 = none (the book)", low=0.0, high=1.0, open_end="high",
        group="Hyperparameters", label="Label smoothing", step=0.05,
        search={"choices": [0.0, 0.05, 0.1, 0.2]},
    )  # fmt: skip
    evals_per_epoch: int = knob(
        1, help="validations per epoch (the last one at the epoch's end)", low=1, high=20,
        group="Hyperparameters", label="Validations per epoch",
    )  # fmt: skip
    target_accuracy: float | None = knob(
        None, help="stop once validation shows the model reaches it (the lower end of the "
        "accuracy's 95 % interval)", low=0.0, high=1.0,
        open_end="low", group="Hyperparameters",
        label="Target accuracy (0 = none: run every epoch)", zero_unsets=True, step=0.01,
        format="%.3f",
    )  # fmt: skip
    early_stop_patience: int = knob(
        0, help="end the run once this many validations in a row do not beat its best "
        "validation accuracy (0 = off)", low=0, high=1000, group="Hyperparameters",
        label="Early stopping: patience in validations (0 = off)",
    )  # fmt: skip
    seed: int = knob(
        1, help="seed of the split, the initial weights and the shuffling", low=0,
        high=2**31 - 1, group="Run", label="Seed",
    )  # fmt: skip
    name: str = knob(
        "", help="a name for the run", max_length=200, group="Run", label="Run name",
        setting=False,
    )  # fmt: skip
    tags: list[str] = knob(
        factory=list, help="a tag (repeatable)", min_length=1, max_length=50, group="Run",
        label="Tags (comma-separated)", setting=False,
    )  # fmt: skip
    threads: int = knob(0, help="torch threads (0 = all cores)", low=0, high=256)
    workers: int = knob(
        1, help="data-parallel workers for one run (with --executor ray)", low=1, high=64,
        label="Data-parallel workers",
    )  # fmt: skip
    device: str = knob("auto", help="where to train", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = knob(
        "auto", help="autocast precision", choices=("auto", "fp32", "bf16", "fp16")
    )  # fmt: skip
    data_choices: int | None = knob(
        None, help="version of the image folder's exclude/relabel choices applied (0 = none; "
        "pinned when the run is created)", low=0, high=1_000_000,
    )  # fmt: skip
    split_version: int | None = knob(
        None, help="the rule splitting the images: 1 = stratified by class, 0 = random (runs "
        "created before stratified splits; pinned when the run is created)", low=0, high=1,
    )  # fmt: skip
    model_spec: dict[str, Any] | None = knob(
        None, help="a custom model's full JSON spec (see `models --spec v1`)", setting=False
    )  # fmt: skip

    # ---- validation -------------------------------------------------------------------
    def errors(self) -> dict[str, str]:
        """``{field: message}`` for every field whose value its Knob does not allow."""
        found = {}
        for name in knobs(type(self)):
            message = field_error(name, getattr(self, name), type(self))
            if message:
                found[name] = message
        return found

    def validate(self) -> TrainConfig:
        """Check every field alone; raise ConfigError naming the first bad one. Returns self."""
        for name, message in self.errors().items():
            raise ConfigError(name, message)
        return self

    # ---- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored in checkpoints and the run store)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> TrainConfig:
        """Build and validate from a dict (no I/O); unknown keys are an error when ``strict``
        (user input), else ignored."""
        if not isinstance(data, dict):
            raise ConfigError("config", "must be a mapping of field names to values")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown and strict:
            raise ConfigError(
                unknown[0], f"unknown setting; valid settings are {', '.join(sorted(names))}"
            )
        config = cls(**{k: v for k, v in data.items() if k in names})
        if isinstance(config.tags, tuple):
            config.tags = list(config.tags)
        return config.validate()


def config_class() -> type[TrainConfig]:
    """The config class the CLI, the Train and Sweep pages and the sweep space build: this
    module's ``TrainConfig``, looked up at call time (a test may put a subclass in its place)."""
    return TrainConfig


@functools.cache
def _knobs(cls: type) -> dict[str, tuple[Knob, type, bool]]:
    hints = typing.get_type_hints(cls)
    return {
        f.name: (f.metadata["knob"], *value_type(hints[f.name]))
        for f in dataclasses.fields(cls)
        if "knob" in f.metadata
    }


def knobs(cls: type | None = None) -> dict[str, Knob]:
    """``{field: Knob}`` of ``cls`` (default: :func:`config_class`), in field order."""
    return {name: k for name, (k, _, _) in _knobs(cls or config_class()).items()}


def value_type(hint: Any) -> tuple[type, bool]:
    """(the value's type: int, float, bool, str, list or dict; whether None is allowed) of a
    field's annotation."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    return typing.get_origin(hint) or hint, optional


def field_type(name: str, cls: type | None = None) -> tuple[type, bool]:
    """(type, None allowed) of field ``name`` (see :func:`value_type`)."""
    _, kind, optional = _knobs(cls or config_class())[name]
    return kind, optional


def field_error(name: str, value: Any, cls: type | None = None) -> str | None:
    """Why ``value`` is not allowed in field ``name`` (None: it is), from the field alone."""
    k, kind, optional = _knobs(cls or config_class())[name]
    if value is None:
        return None if optional else "must be set"
    if kind is bool and not isinstance(value, bool):
        return "must be true, false or unset" if optional else "must be true or false"
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number, got {value!r}"
        return _range(k, value)
    if kind is float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return f"must be a finite number, got {value!r}"
        return _range(k, value)
    if kind is str:
        if not isinstance(value, str):
            return f"must be text, got {value!r}"
        if k.choices and value not in k.choices:
            return f"must be one of {', '.join(k.choices)}, got {value!r}"
        return None if _fits(k, value) else f"must be {_text_rule(k, 'text')}"
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be a list of texts"
        bad = any(not _fits(k, v) for v in value)
        return f"must be a list of {_text_rule(k, 'texts')}" if bad else None
    if kind is dict and not isinstance(value, dict):
        return "must be a JSON object"
    return None


def _range(k: Knob, value: float) -> str | None:
    lo, hi = k.low, k.high
    if lo is None or hi is None:
        return None
    below = value <= lo if k.open_end == "low" else value < lo
    above = value >= hi if k.open_end == "high" else value > hi
    if not (below or above):
        return None
    if k.open_end:
        return f"must be in {k.allowed()}, got {value:g}"
    return f"must be between {lo:g} and {hi:g}, got {value:g}"


def _fits(k: Knob, text: str) -> bool:
    return k.min_length <= len(text) and (k.max_length is None or len(text) <= k.max_length)


def _text_rule(k: Knob, what: str) -> str:
    """'non-empty text of at most 50 characters' and the like."""
    most = f" of at most {k.max_length} characters" if k.max_length else ""
    return f"{'non-empty ' if k.min_length else ''}{what}{most}"


def check_value(name: str, value: Any) -> Any:
    """``value`` if field ``name`` allows it, else ConfigError naming the field."""
    message = field_error(name, value, TrainConfig)
    if message:
        raise ConfigError(name, message)
    return value


def check_name(name: Any) -> str:
    """A run name (the one rule for configs, renames and the UI), without surrounding spaces."""
    text: str = check_value("name", name)
    return text.strip()


def check_tags(tags: Any) -> list[str]:
    """Run tags: a list of non-empty texts of at most 50 characters each."""
    checked: list[str] = check_value("tags", tags)
    return checked

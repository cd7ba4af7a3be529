"""``resolve(config)``: a config made ready for a run, once, when the run is created.

Checks the dataset and model names against their registries (saved specs included) and the
attribute against the dataset's, fills the fields the config leaves to the dataset, pins the
saved spec into ``model_spec``, the image folder's exclude / relabel choices version into
``data_choices`` (0: none) and the current split rule into ``split_version``. The result is
what a run stores; resolving it again changes nothing.
"""

from __future__ import annotations

import dataclasses

from .config import TrainConfig, knobs
from .data import dataset_info
from .data.choices import pinned_version
from .data.splits import pinned_split
from .errors import ConfigError
from .models import resolve_model_spec


def with_defaults(config: TrainConfig) -> TrainConfig:
    """A copy with the dataset's defaults in the fields left unset (no I/O: what a page shows
    before a run is created)."""
    defaults = dataset_info(config.dataset).defaults()
    unset = {
        name: defaults[name]
        for name, k in knobs(type(config)).items()
        if k.dataset_default and getattr(config, name) is None
    }
    return dataclasses.replace(config, tags=list(config.tags), **unset)


def resolve(config: TrainConfig) -> TrainConfig:
    """The validated config a run stores (see the module's docstring); ConfigError naming the
    field for an unknown dataset, model or attribute."""
    config.validate()
    info = dataset_info(config.dataset)
    if info.attributes and config.attribute not in info.attributes:
        raise ConfigError(
            "attribute",
            f"unknown attribute {config.attribute!r} of {info.name}; "
            f"choose one of {', '.join(info.attributes)}",
        )
    out = with_defaults(config)
    out.model_spec = resolve_model_spec(config.model, config.model_spec)
    if out.data_choices is None:
        out.data_choices = pinned_version(out.data_dir) if info.data_choices else 0
    out.split_version = pinned_split(out.split_version)
    return out.validate()

"""DataSpec: the fields that decide which images a run sees and how they are transformed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .base import dataset_info


@dataclass(frozen=True)
class DataSpec:
    """Which images a run sees: the dataset and its folder (and attribute), the seed that
    splits and subsets it, the sizes, balancing, the transform's size and augmentation, and
    the version of the folder's exclude / relabel choices (0 = none) and the split rule
    (:data:`.splits.SPLIT_VERSION`; 0 = the legacy random split). Every loader takes one
    (``load_dataset(spec)``); build it with :meth:`of`."""

    dataset: str
    data_dir: str | None
    attribute: str
    seed: int
    augment: bool
    balance: str
    train_size: int | None
    val_size: int | None
    image_size: int | None
    data_choices: int = 0
    split_version: int = 0

    @classmethod
    def of(cls, source: Any) -> DataSpec:
        """The DataSpec of a config (a TrainConfig or a stored config's mapping): its data
        fields, the dataset's defaults where it leaves them unset, and ``data_choices`` and
        ``split_version`` None or missing read as 0 (a run stored before they were pinned saw
        no choices and the random split)."""

        def get(name: str) -> Any:
            return source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)

        values: dict[str, Any] = {f.name: get(f.name) for f in dataclasses.fields(cls)}
        for name in ("dataset", "attribute", "seed", "balance"):
            if values[name] is None:
                raise ConfigError(name, "missing from the run's config")
        defaults = dataset_info(values["dataset"]).defaults()
        for name in ("augment", "train_size", "val_size", "image_size"):
            if values[name] is None:
                values[name] = defaults[name]
        values["augment"] = bool(values["augment"])
        values["data_choices"] = values["data_choices"] or 0
        values["split_version"] = values["split_version"] or 0
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DataSpec:
        return cls(**json.loads(text))

"""Containers shared by every dataset: uint8 image tensors in memory, batched transforms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError


@dataclass
class ImageSet:
    """Decoded images as one uint8 tensor ``[N, C, H, W]`` and int64 labels ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if len(self.labels) != len(self.images):
            raise ValueError("images and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> ImageSet:
        """The images at ``index`` (a LongTensor of positions)."""
        return ImageSet(self.images[index], self.labels[index])

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.labels, minlength=num_classes).tolist()


class BatchTransform:
    """Turns a uint8 batch into the float batch a model sees.

    ``train`` may augment (randomness only from the given generator, so runs are
    reproducible); ``eval`` is deterministic. Subclasses set ``output_size`` (H, W).
    """

    output_size: tuple[int, int]

    def train(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.eval(images)

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class DatasetBundle:
    """What a loader returns: splits, class names, the batch transform and provenance."""

    name: str
    family: str  # "digits" | "faces" | "folder"
    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    class_names: list[str]
    transform: BatchTransform
    note: str = ""  # non-empty = shown loudly (e.g. offline sample instead of the full set)
    is_sample: bool = False
    source: str = ""  # where the data was read from
    loss_weights: list[float] | None = None  # per-class loss weights for balance=weighted

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        """Side of the (square) model input after the eval transform."""
        return int(self.transform.output_size[0])

    def split(self, name: str) -> ImageSet:
        """The split called ``name`` (train/val/test); a DataError if it does not exist."""
        from ..errors import DataError

        s = {"train": self.train, "val": self.val, "test": self.test}.get(name)
        if s is None:
            raise DataError(f"dataset {self.name!r} has no {name!r} split here")
        return s


INPUT_KINDS = ("dataset", "canvas", "face")  # how a trained model's inputs are prepared


def no_source_status() -> dict[str, Any]:
    """The source status of a dataset that says nothing about where it comes from."""
    return {"available": True, "source": "", "note": ""}


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: what a dataset is, what pages need to know about it before it is
    loaded, its defaults, and the functions that load it and say where it would come from.

    ``input_kind`` is how an image is prepared for a model trained on it (one of
    :data:`INPUT_KINDS`: ``canvas`` = a drawing the MNIST way, ``face`` = CelebA's crop,
    ``dataset`` = resized as it is); ``recognises`` names what such a model tells apart.
    """

    name: str
    family: str
    description: str
    loader: Callable  # (DataSpec) -> DatasetBundle
    in_channels: int = 3
    num_classes: int | None = None  # None: known once loaded (a folder's sub-folders)
    input_size: int = 28  # side of the model input unless the config sets image_size
    input_kind: str = "dataset"
    recognises: str = ""
    needs_data_dir: bool = False
    default_data_dir: str = ""  # pre-filled where a page asks for the data folder
    user_image_size: bool = False  # the user chooses the image size (pages ask for it)
    attributes: tuple[str, ...] = ()  # the attributes it can learn (pages ask which one)
    data_choices: bool = False  # exclude / relabel choices can be saved for its folder
    # available, source, note; and sample: True when only a small offline sample is there
    source_status: Callable[[], dict[str, Any]] = no_source_status
    # a cheap count of its images without decoding: (data_dir) -> {"all", "val", "test"} (the
    # last two: given splits) or None when unknown
    count_images: Callable[[str | None], dict[str, int] | None] | None = None
    default_batch_size: int = 64
    default_augment: bool = False
    default_train_size: int | None = None
    default_val_size: int | None = None
    default_image_size: int | None = None
    # downloads it when the user asks: (source, data_dir, progress, log) -> what it did
    fetch: Callable[..., dict[str, Any]] | None = None
    fetch_terms: str = ""  # the licence shown before the first byte ({folder}: where it goes)
    fetch_label: str = ""  # the button that fetches it, e.g. "Get CelebA"
    train_note: str = ""  # shown on the Train page beside the dataset (e.g. a book erratum)

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"{self.name}: input_kind must be one of {', '.join(INPUT_KINDS)}")

    @property
    def user_folder(self) -> bool:
        """Its images are a folder the user names (no default place): pages ask which."""
        return self.needs_data_dir and not self.default_data_dir

    def defaults(self) -> dict[str, Any]:
        """The config values this dataset gives the fields a config leaves unset."""
        return {
            "batch_size": self.default_batch_size,
            "augment": self.default_augment,
            "train_size": self.default_train_size,
            "val_size": self.default_val_size,
            "image_size": self.default_image_size,
        }

    def input_geometry(self, image_size: int | None = None) -> tuple[int, int, int | None]:
        """(channels, side, classes) of a model input for this dataset, before loading it."""
        side = image_size or self.default_image_size or self.input_size
        return self.in_channels, int(side), self.num_classes


# The registry of datasets by name, filled by ``cnn_core.data`` (whose ``__init__`` imports
# every loader) as the package is imported; it lives here, below the loaders, so that
# ``DataSpec.of`` can read a dataset's defaults.
DATASETS: dict[str, DatasetInfo] = {}


def dataset_names() -> list[str]:
    return list(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name`` (ConfigError listing valid names if unknown)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(
            "dataset", f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}"
        ) from None

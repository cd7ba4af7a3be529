"""Dataset registry: ``load_dataset(spec)`` → :class:`DatasetBundle` of uint8 tensors.

Adding a dataset = one loader module + one entry in ``DATASETS``: the entry tells pages and
checkpoints everything they need before the data is loaded (see :class:`DatasetInfo`).
"""

from __future__ import annotations

import functools

from . import celeba, celeba_fetch, folder, idx
from .base import (
    DATASETS,
    INPUT_KINDS,
    BatchTransform,
    DatasetBundle,
    DatasetInfo,
    ImageSet,
    dataset_info,
    dataset_names,
)
from .spec import DataSpec

DATASETS.update(
    (info.name, info)
    for info in (
        DatasetInfo(
            "mnist",
            "digits",
            "Handwritten digits 0-9, 28x28 grey (LeCun et al.)",
            idx.load_mnist,
            in_channels=1,
            num_classes=10,
            input_kind="canvas",
            recognises="handwritten digits",
            source_status=functools.partial(idx.source_status, "mnist"),
            default_batch_size=64,
        ),
        DatasetInfo(
            "fashion-mnist",
            "digits",
            "Zalando clothing, 10 classes, 28x28 grey",
            idx.load_fashion_mnist,
            in_channels=1,
            num_classes=10,
            input_kind="canvas",
            recognises="clothing",
            source_status=functools.partial(idx.source_status, "fashion-mnist"),
            default_batch_size=64,
        ),
        DatasetInfo(
            "celeba",
            "faces",
            "CelebA aligned faces, one of 40 binary attributes (default Smiling)",
            celeba.load_celeba,
            in_channels=3,
            num_classes=2,
            input_kind="face",
            recognises="a face attribute",
            needs_data_dir=True,
            default_data_dir="celeba",
            source_status=celeba.source_status,
            default_batch_size=32,
            default_augment=True,
            default_train_size=16_000,
            default_val_size=1_000,
            default_image_size=64,
            fetch=celeba_fetch.fetch_celeba,
            fetch_terms=celeba_fetch.LICENCE,
            fetch_label="Get CelebA",
            train_note=celeba.ERRATUM,
            attributes=celeba.ATTRIBUTES,
        ),
        DatasetInfo(
            "image-folder",
            "folder",
            "Your own images: ROOT/<class>/*.png|jpg|jpeg|webp|bmp",
            folder.load_image_folder,
            in_channels=3,  # 1 when every image is grey
            num_classes=None,  # one per sub-folder
            input_kind="dataset",
            recognises="your own classes",
            needs_data_dir=True,
            user_image_size=True,
            data_choices=True,
            source_status=folder.source_status,
            count_images=folder.count_images,
            default_batch_size=32,
            default_image_size=28,
        ),
    )
)


def input_geometry(name: str, image_size: int | None = None) -> tuple[int, int, int]:
    """(channels, side, classes) a model for dataset ``name`` sees, before loading it; a folder's
    classes are known only once it is read, so two are assumed for a preview."""
    channels, side, classes = dataset_info(name).input_geometry(image_size)
    return channels, side, classes or 2


def load_dataset(spec: DataSpec) -> DatasetBundle:
    """Load, split, subset and balance the images ``spec`` describes."""
    if not isinstance(spec, DataSpec):
        raise TypeError(f"load_dataset takes a DataSpec (DataSpec.of(config)), got {type(spec)}")
    return dataset_info(spec.dataset).loader(spec)


__all__ = [
    "input_geometry",
    "DATASETS",
    "INPUT_KINDS",
    "BatchTransform",
    "DataSpec",
    "DatasetBundle",
    "DatasetInfo",
    "ImageSet",
    "dataset_info",
    "dataset_names",
    "load_dataset",
]

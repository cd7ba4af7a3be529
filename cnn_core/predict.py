"""``Predictor.from_checkpoint(path)``: a trained model plus the preprocessing it needs.

Three input kinds: ``dataset`` (already like the training images), ``canvas`` (a drawing or
a photo of a handwritten digit, prepared the way MNIST was made) and ``face`` (CelebA's
eval transform applied to a photo).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoints import checkpoint_input_kind, load_checkpoint
from .config import TrainConfig
from .data import INPUT_KINDS
from .errors import CheckpointError, UserError
from .models import create_model
from .scoring import probabilities


@dataclass
class Prediction:
    """One answer: the winning class, its name and every class probability."""

    label: int | None
    class_name: str | None
    probabilities: list[float]
    empty: bool = False  # nothing drawn / no content: no guess was made
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # preprocessing images for display
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "class_name": self.class_name,
            "probabilities": self.probabilities,
            "empty": self.empty,
        }


class Predictor:
    """A model in eval mode with the class names and input geometry of its checkpoint."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        class_names: list[str],
        *,
        input_kind: str,
        in_channels: int,
        image_size: int,
        note: str = "",
        source: str = "",
    ):
        self.model = model.eval()
        self.config = config
        self.class_names = class_names
        self.input_kind = input_kind  # how its own inputs are prepared (checkpoint_input_kind)
        self.in_channels = in_channels
        self.image_size = image_size
        self.note = note
        self.source = source

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> Predictor:
        """Load a checkpoint safely and rebuild its model (CPU, eval mode)."""
        data = load_checkpoint(path)
        config = TrainConfig.from_dict(data["config"], strict=False)
        names = list(data["class_names"])
        model = create_model(
            config.model,
            data["in_channels"],
            data["image_size"],
            len(names),
            dropout=config.dropout,
            spec=config.model_spec,
        )
        try:
            model.load_state_dict(data["model_state"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(
                f"{Path(path).name}: weights do not fit model {config.model}"
            ) from exc
        return cls(
            model,
            config,
            names,
            input_kind=checkpoint_input_kind(data),
            in_channels=data["in_channels"],
            image_size=data["image_size"],
            note=data.get("dataset_note", ""),
            source=str(path),
        )

    @property
    def accepts_digits(self) -> bool:
        """True for single-channel 28×28 models (MNIST, Fashion-MNIST, 28×28 folders)."""
        return self.in_channels == 1 and self.image_size == 28

    @torch.no_grad()
    def predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities [B, num_classes] for a prepared float batch."""
        if x.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise UserError(
                f"input of shape {tuple(x.shape[1:])} does not fit this model "
                f"({self.in_channels}×{self.image_size}×{self.image_size})"
            )
        return probabilities(self.model(x))

    def prepare(self, image: Any, kind: str = "dataset", **options: Any):
        """Preprocess one image for ``kind``; returns (tensor or None, steps dict)."""
        from . import preprocess

        if kind == "canvas":
            if not self.accepts_digits:
                raise UserError(
                    f"this model expects {self.in_channels}×{self.image_size}×{self.image_size} "
                    "images, not 28×28 digits: pick a digits model for drawings"
                )
            digit = preprocess.prepare_digit(image)
            return digit.tensor, digit.steps
        if kind == "face":
            if self.in_channels != 3:
                raise UserError(
                    "this model was trained on greyscale images: pick a face model for photos"
                )
            return preprocess.prepare_face(image, self.image_size, **options), {}
        if kind == "dataset":
            return preprocess.prepare_dataset_image(image, self.in_channels, self.image_size), {}
        raise UserError(f"unknown input kind {kind!r}; choose one of {', '.join(INPUT_KINDS)}")

    def open_input(self, source: Any, kind: str = "dataset", *, name: str | None = None) -> Any:
        """Decode an image file (path, bytes or binary file object) for a ``kind`` input:
        ``dataset`` inputs with the draft of the model's own size, as its training images were
        decoded (:func:`cnn_core.images.decode_at`), so both give the model the same pixels.
        ImageError (naming ``name``, else the file) if it is not a usable image."""
        from .images import open_image

        draft = (self.image_size, self.image_size) if kind == "dataset" else None
        return open_image(source, name=name, draft=draft)

    def predict(
        self, image: Any, kind: str = "dataset", *, name: str | None = None, **options: Any
    ) -> Prediction:
        """Preprocess and classify one image (a PIL image, array, file path or bytes; files
        are decoded by :meth:`open_input`, ``name`` labelling them in errors)."""
        start = time.perf_counter()
        if isinstance(image, str | os.PathLike | bytes):
            image = self.open_input(image, kind, name=name)
        x, steps = self.prepare(image, kind, **options)
        if x is None:
            return Prediction(
                None, None, [], empty=True, steps=steps, seconds=time.perf_counter() - start
            )
        probs = self.predict_tensor(x)[0].tolist()
        label = int(np.argmax(probs))
        return Prediction(
            label, self.class_names[label], probs, steps=steps, seconds=time.perf_counter() - start
        )

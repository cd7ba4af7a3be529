"""Training recipes: named presets that expand into :class:`~cnn_core.config.TrainConfig` fields.

A run stores the expanded fields, never the preset's name, so it stays reproducible when a
preset changes. Fields given explicitly (CLI flags, Train page widgets) win over the preset.

* ``book``: the book's recipe (Raschka et al., ch. 14): v1, Adam 1e-3 at a constant rate,
  the dataset's batch size, one validation per epoch.
* ``fast``: what measurement found reaching 91 % Fashion-MNIST test accuracy soonest on a
  2-core CPU (``python -m benchmarks --part accuracy``; its numbers, and those behind each
  choice below: ``benchmarks/README.md``): v5, the small 3×3 BatchNorm network; its first
  convolution patch-whitened and frozen (``whiten``); Muon for the convolution filters
  (``muon_lr`` 0.05) and Adam at 8e-3 for the rest, batch 256; a one-cycle schedule over 3
  epochs (a quarter warming up, then a linear fall to 0); an average of the weights (``ema``
  0.99) as the model validated and kept; label smoothing 0.1; no dropout (a short run does not
  overfit); eight validations per epoch (a target is seen within 1/8 epoch of being reached;
  validation time is not training time); precision and memory layout left to ``auto``.
* ``accurate``: the best Fashion-MNIST test accuracy measured for about 60 s of training on the
  same CPU with fewer than 100,000 parameters: v6 (v5 widened to 16-48-96 channels) with
  ``fast``'s techniques over 8 epochs, label smoothing 0.2 (a longer run overfits more), two
  validations per epoch.
* ``fast-faces``: a short recipe for CelebA attributes (v5, batch 64, Adam 3e-3 with a
  one-cycle schedule over 4 epochs, 4 validations per epoch, no dropout or label smoothing).
  Checked only on the tiny fixture CelebA of the tests (it trains and evaluates end to end);
  its accuracy and speed on real CelebA are unmeasured.

A recipe that cannot work on small data says so (:func:`check_fits`): ``fast`` needs
:data:`MIN_TRAIN_IMAGES` training images, since its 256-image steps over 3 epochs give too few
steps on fewer (a 40-image folder's 34 training images make one step an epoch).

:func:`smile_classifier` is the chapter's second experiment as one config: Smiling on the
book's 16,000 training / 1,000 validation images, with ``book`` (v1, the book's 30 epochs)
or ``fast-faces``.
"""

from __future__ import annotations

from typing import Any

from .config import TrainConfig, check_value, knobs
from .errors import ConfigError
from .resolve import data_size

FAST: dict[str, Any] = {  # the fast recipe (accurate builds on it)
    "model": "v5",
    "batch_size": 256,
    "lr": 8e-3,
    "optimizer": "muon",
    "muon_lr": 0.05,
    "whiten": True,
    "ema": 0.99,
    "lr_schedule": "onecycle",
    "warmup": 0.25,
    "label_smoothing": 0.1,
    "dropout": 0.0,
    "evals_per_epoch": 8,
    "epochs": 3,
}
RECIPES: dict[str, dict[str, Any]] = {
    "book": {
        "model": "v1",
        "epochs": 8,
        "batch_size": None,
        "lr": 1e-3,
        "optimizer": "adam",
        "lr_schedule": "constant",
        "warmup": 0.0,
        "label_smoothing": 0.0,
        "dropout": 0.5,
        "evals_per_epoch": 1,
    },
    "fast": FAST,
    # accurate: fast's techniques on the wider v6, longer, two validations an epoch
    "accurate": {**FAST, "model": "v6", "label_smoothing": 0.2, "evals_per_epoch": 2, "epochs": 8},
    "fast-faces": {
        "model": "v5",
        "batch_size": 64,
        "lr": 3e-3,
        "optimizer": "adam",
        "lr_schedule": "onecycle",
        "warmup": 0.25,
        "label_smoothing": 0.0,
        "dropout": 0.0,
        "evals_per_epoch": 4,
        "epochs": 4,
    },
}
MIN_TRAIN_IMAGES = {"fast": 5_000, "accurate": 5_000}  # fewer: under ~60 steps of 256 images
DATA_FIELDS = ("dataset", "data_dir", "train_size", "val_size")  # what data_size reads
SMILE_DATA = {"dataset": "celeba", "attribute": "Smiling", "train_size": 16_000, "val_size": 1_000}
BOOK_CELEBA_EPOCHS = 30  # the book's smile classifier trains for 30 epochs


def smile_classifier(recipe: str = "book") -> dict[str, Any]:
    """The TrainConfig fields of the chapter's smile classifier under ``recipe``."""
    epochs = {"epochs": BOOK_CELEBA_EPOCHS} if recipe == "book" else {}
    name = f"Smile classifier ({recipe_fields(recipe)['model']}, {recipe})"
    return apply_recipe(recipe, {**SMILE_DATA, **epochs, "name": name})


def check_recipes(recipes: dict[str, dict[str, Any]]) -> None:
    """Every field a recipe sets is a TrainConfig field and its value one the field allows
    (ConfigError naming the field otherwise); run on the presets when this module loads."""
    for name, fields in recipes.items():
        for field, value in fields.items():
            if field not in knobs(TrainConfig):
                raise ConfigError(field, f"recipe {name!r} sets a field TrainConfig does not have")
            check_value(field, value)


check_recipes(RECIPES)


def recipe_names() -> list[str]:
    """The preset names, ``book`` first."""
    return list(RECIPES)


def recipe_fields(name: str) -> dict[str, Any]:
    """The TrainConfig fields preset ``name`` sets; ConfigError (field ``recipe``) if unknown."""
    if name not in RECIPES:
        raise ConfigError("recipe", f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[name])


def check_fits(name: str, config: TrainConfig) -> None:
    """ConfigError (field ``recipe``) when preset ``name`` cannot work on the training images
    of ``config``'s data (its dataset, folder and sizes)."""
    need = MIN_TRAIN_IMAGES.get(name)
    size = data_size(config) if need else None
    if need and size is not None and size.train < need:
        fields = recipe_fields(name)
        raise ConfigError(
            "recipe",
            f"{name} needs at least {need:,} training images ({fields['batch_size']} a step for "
            f"{fields['epochs']} epochs gives too few steps); this data has {size.train:,} — "
            "use book",
        )


def apply_recipe(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (explicit settings) on top of preset ``name``'s fields; ConfigError when the
    preset cannot work on the data ``values`` name (:func:`check_fits`)."""
    data = {k: values[k] for k in DATA_FIELDS if k in values}
    check_fits(name, TrainConfig(**data))
    return {**recipe_fields(name), **values}

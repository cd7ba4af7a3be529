"""``bench``'s accuracy part: the time to accuracy (:mod:`benchmarks.targets`) and the accuracy
ladder (what raises test accuracy at one training-time budget), on real Fashion-MNIST.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cnn_core import trainer
from cnn_core.callbacks import Callback
from cnn_core.data import DatasetBundle, ImageSet
from cnn_core.scoring import evaluate, predictions
from cnn_core.speed import autocast

from .book import Family, digits_family, digits_test_set
from .targets import ACCURACY_FULL, ACCURACY_QUICK, AccuracyScale, time_to_accuracy

LADDER_STEPS = (  # (label, fields added to the row above); "tta" = flip test-time augmentation
    ("book (v1, batch 64, Adam 1e-3 constant)", {}),
    ("+ batch norm (v2)", {"model": "v2"}),
    ("+ augmentation (random shifts)", {"augment": True}),
    (
        "+ one-cycle schedule (peak lr 3e-3)",
        {"lr_schedule": "onecycle", "warmup": 0.25, "lr": 3e-3},
    ),
    ("+ label smoothing 0.1", {"label_smoothing": 0.1}),
    ("+ flip test-time augmentation", {"tta": True}),
)


class TimeBudget(Callback):
    """Stops training once ``seconds`` of training (validation excluded) are spent."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def should_stop(self, state) -> bool:
        return state.train_seconds(running=True) >= self.seconds


# ---- the accuracy ladder -------------------------------------------------------------------
@torch.no_grad()
def flip_tta_accuracy(model: torch.nn.Module, test: ImageSet, data: DatasetBundle, config) -> float:
    """Test accuracy with the logits of each image and its mirror image averaged."""
    model.eval()
    correct = 0
    for start in range(0, len(test), 500):
        x = data.transform.eval(test.images[start : start + 500])
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(config.precision, torch.device("cpu")):
            logits = model(x).float() + model(x.flip(-1)).float()
        correct += int((predictions(logits) == test.labels[start : start + 500]).sum())
    return correct / len(test)


def accuracy_ladder(
    fam: Family,
    test: ImageSet,
    scale: AccuracyScale,
    say: Callable[[str], None] = lambda message: None,
) -> list[dict[str, Any]]:
    """Test accuracy after ``scale.budget_s`` training seconds, each technique on top of the
    previous ones. One-cycle needs its length in advance: its epochs come from the images/s
    measured on the row before (same model, batch and augmentation), so it ends at the budget."""
    data = dataclasses.replace(fam.bundle, val=test)
    fields: dict[str, Any] = {"epochs": 1000}
    rows, rate, model = [], 0.0, None
    for label, step in LADDER_STEPS:
        tta = step.get("tta", False)
        fields |= {k: v for k, v in step.items() if k != "tta"}
        if "lr_schedule" in step:
            fields["epochs"] = max(1, round(scale.budget_s * rate / len(data.train)))
        config = dataclasses.replace(fam.config, **fields)
        if not tta:
            result = trainer.fit(config, [TimeBudget(scale.budget_s)], data=data)
            state = result.state
            rate = state.images_seen() / max(1e-9, state.train_seconds())
            model = state.eval_model
            accuracy = evaluate(
                model, test, data.transform, data.num_classes, config=config
            ).accuracy
        else:
            accuracy = flip_tta_accuracy(model, test, data, config)
        rows.append(
            {
                "technique": label,
                "test_accuracy": accuracy,
                "train_seconds": state.train_seconds(),
                "epochs": state.images_seen() / len(data.train),
            }
        )
        say(f"ladder: {label}: test accuracy {accuracy:.4f}")
    return rows


def run_accuracy(
    root: Path, quick: bool, threads: int, say: Callable[[str], None], seeds: int | None = None
) -> dict:
    """The whole time-to-accuracy part on real Fashion-MNIST ({} when it is not here)."""
    scale = ACCURACY_QUICK if quick else ACCURACY_FULL
    fam = digits_family("fashion-mnist", root, scale.train, scale.val)
    if fam is None:
        return {}
    test_images, test_book = digits_test_set("fashion-mnist", root)
    if scale.test is not None:
        test_images = test_images.subset(torch.arange(scale.test))
        test_book = torch.utils.data.Subset(test_book, range(scale.test))
    say(f"accuracy ladder at {scale.budget_s:g} s of training per row")
    ladder = accuracy_ladder(fam, test_images, scale, say)
    say(f"time to {scale.target:.1%} test accuracy: book pipeline vs fast vs accurate")
    result = time_to_accuracy(fam, (test_images, test_book), scale, threads, say, seeds)
    return result | {"ladder": ladder, "budget_s": scale.budget_s}


NAMES = {
    "book": "book pipeline + recipe",
    "fast": "cnn_core, fast",
    "accurate": "cnn_core, accurate",
}


def accuracy_lines(r: dict[str, Any]) -> list[str]:
    """The time-to-accuracy table, the stop rule's check and the accuracy ladder as text."""
    key, second = f"{r['target']:g}", f"{r['accurate_target']:g}"
    lines = [
        "",
        f"Time to {r['target']:.1%} test accuracy ({r['train_images']:,} training images, "
        f"checked on the {r['test_images']:,} test images after every validation; taking turns;"
        " medians over seeds, the book's pipeline once)",
        f"{'pipeline':<24} {'seeds':>5} {'reached':>7} {'s to target':>11} {'images':>9} "
        f"{'final acc':>9} {'train s':>8} {'images/s':>9} {'speedup':>8}",
    ]
    for name, row in r["runs"].items():
        to = row["to"][key]
        seconds = f"{to['seconds']:.1f}" if to["seconds"] is not None else "not reached"
        images = f"{to['images']:,.0f}" if to["images"] is not None else "-"
        speedup = f"{row['speedup']:.1f}×" if row["speedup"] else "-"
        lines.append(
            f"{NAMES[name]:<24} {len(row['seeds']):>5} {to['reached']:>7.0%} {seconds:>11} "
            f"{images:>9} {100 * row['final_accuracy']:>8.2f}% {row['train_seconds']:>8.1f} "
            f"{row['images_per_s']:>9,.0f} {speedup:>8}"
        )
    accurate = r["runs"]["accurate"]["to"][second]
    when = (
        f"{accurate['seconds']:.1f} s, {accurate['images']:,.0f} images"
        if accurate["seconds"] is not None
        else "not reached"
    )
    lines.append(
        f"accurate to {r['accurate_target']:.1%}: {accurate['reached']:.0%} of seeds, {when}"
    )
    if not r["book_reached"]:
        lines.append("(the book never reached the target: speedups are against all its training)")
    for name, fields in r["recipes"].items():
        lines.append(f"{name} recipe: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
    rule = r["stop_rule"]
    lines += [
        f"Stop rule: fast with --target-accuracy {rule['target']:g} (validating on the held-out "
        f"split) stopped on {rule['stopped']:.0%} of seeds; its checkpoints score "
        f"{100 * rule['test_accuracy']:.2f} % on the test images (median; "
        + ", ".join(f"{100 * x['test_accuracy']:.2f}" for x in rule["rows"])
        + ")",
        "",
    ]
    lines.append(f"Accuracy ladder: test accuracy after {r['budget_s']:g} s of training per row")
    lines.append(f"{'technique':<42} {'test acc':>8} {'train s':>8} {'epochs':>6}")
    for row in r["ladder"]:
        lines.append(
            f"{row['technique']:<42} {100 * row['test_accuracy']:>7.2f}% "
            f"{row['train_seconds']:>8.1f} {row['epochs']:>6.2f}"
        )
    return lines

"""``bench``'s time-to-accuracy part: seconds of training until a target test accuracy, side by
side, and the accuracy ladder (what raises accuracy at one training-time budget).

Fashion-MNIST as in the book: 50,000 training / 10,000 validation images of the training file;
every validation here is on the 10,000 test images (the target is checked after each one).
Three runs take turns every few batches so machine noise hits them alike: the book's pipeline
and recipe (its loop validates once per epoch), cnn_core with the book's recipe, and cnn_core
with the ``fast`` recipe. Training seconds exclude validation on every side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnn_core import trainer
from cnn_core.callbacks import Callback
from cnn_core.data import DatasetBundle, ImageSet
from cnn_core.recipes import recipe_fields
from cnn_core.scoring import evaluate, predictions
from cnn_core.speed import autocast

from .book import Family, book_run, digits_family, digits_test_set
from .turns import alternate, core_run

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


@dataclass(frozen=True)
class AccuracyScale:
    """How much the time-to-accuracy part does."""

    train: int
    val: int  # held out as in the book (unused by the timed runs: they validate on test)
    test: int | None  # test images (None: all 10,000)
    target: float
    book_epochs: int  # at most this many epochs for the book's recipe
    fast_epochs: int
    turn: int  # batches of 64 images per turn
    budget_s: float  # ladder: training seconds per row


ACCURACY_FULL = AccuracyScale(50_000, 10_000, None, 0.91, 15, 3, 40, 60.0)
ACCURACY_QUICK = AccuracyScale(640, 200, 300, 0.5, 2, 1, 5, 1.0)


class TimeBudget(Callback):
    """Stops training once ``seconds`` of training (validation excluded) are spent."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def should_stop(self, state) -> bool:
        return state.train_seconds(running=True) >= self.seconds


def _core_summary(result: trainer.FitResult) -> dict[str, Any]:
    state = result.state
    target = state.target or {}
    return {
        "seconds_to_target": target.get("time_to_target_s"),
        "images_to_target": target.get("images_to_target"),
        "final_accuracy": (state.last_evaluation or {}).get("val_accuracy"),
        "train_seconds": state.train_seconds(),
        "images_seen": state.images_seen(),
        "images_per_s": state.images_seen() / max(1e-9, state.train_seconds()),
    }


def _book_summary(out: list[dict[str, Any]], n_train: int, target: float) -> dict[str, Any]:
    seconds, hit = 0.0, None
    for epoch, m in enumerate(out, start=1):
        seconds += m["seconds"]
        if hit is None and m["val_accuracy"] >= target:
            hit = (seconds, epoch * n_train)
    total = sum(m["seconds"] for m in out)
    return {
        "seconds_to_target": hit[0] if hit else None,
        "images_to_target": hit[1] if hit else None,
        "final_accuracy": out[-1]["val_accuracy"] if out else None,
        "train_seconds": total,
        "images_seen": len(out) * n_train,
        "images_per_s": len(out) * n_train / max(1e-9, total),
    }


def logged(
    run: Iterator[None], out: list, say: Callable[[str], None], label: str
) -> Iterator[None]:
    """``run``, saying each result it appends to ``out`` as it comes (a partial bench still
    leaves its numbers in the log)."""
    told = 0
    for _ in run:
        while told < len(out):
            told += 1
            say(f"{label}: {told} done: {_progress(out[:told])}")
        yield
    for i in range(told, len(out)):
        say(f"{label}: {i + 1} done: {_progress(out[: i + 1])}")


def _progress(out: list) -> str:
    last = out[-1]
    if isinstance(last, trainer.FitResult):
        summary = _core_summary(last)
        return ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if v is not None)
    seconds = sum(m["seconds"] for m in out)
    return f"test accuracy {last['val_accuracy']:.4f} after {seconds:.1f} s of training"


def time_to_accuracy(
    fam: Family,
    test: tuple[ImageSet, Any],
    scale: AccuracyScale,
    threads: int,
    say: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Book vs cnn_core (book recipe) vs cnn_core (fast), taking turns; seconds to target each."""
    data = dataclasses.replace(fam.bundle, val=test[0])  # validate on the test images
    fast = recipe_fields("fast") | {"epochs": scale.fast_epochs}
    book_out: list[dict[str, Any]] = []
    results: dict[str, list[trainer.FitResult]] = {"cnn_core_book": [], "cnn_core_fast": []}
    fast_turn = max(1, scale.turn * fam.batch_size // fast["batch_size"])
    runs = [
        logged(
            book_run(
                fam,
                scale.book_epochs,
                scale.turn,
                threads,
                book_out,
                valid=test[1],
                until=scale.target,
            ),
            book_out,
            say,
            "book epoch",
        )
    ]
    core = {
        "cnn_core_book": (scale.book_epochs, scale.turn, {}),
        "cnn_core_fast": (fast.pop("epochs"), fast_turn, fast),
    }
    for key, (epochs, turn, fields) in core.items():
        run = core_run(
            fam,
            epochs,
            turn,
            [],
            data=data,
            results=results[key],
            target_accuracy=scale.target,
            **fields,
        )
        runs.append(logged(run, results[key], say, key))
    alternate(runs)
    rows = {"book": _book_summary(book_out, len(data.train), scale.target)}
    rows |= {key: _core_summary(r[0]) for key, r in results.items()}
    book_s = rows["book"]["seconds_to_target"] or rows["book"]["train_seconds"]
    for row in rows.values():
        s = row["seconds_to_target"]
        row["speedup"] = book_s / s if s else None
    return {
        "target": scale.target,
        "train_images": len(data.train),
        "test_images": len(test[0]),
        "book_reached": rows["book"]["seconds_to_target"] is not None,
        "fast_recipe": recipe_fields("fast"),
        "runs": rows,
    }


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


def run_accuracy(root: Path, quick: bool, threads: int, say: Callable[[str], None]) -> dict:
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
    say(f"time to {scale.target:.1%} test accuracy: book vs cnn_core (book recipe) vs fast")
    result = time_to_accuracy(fam, (test_images, test_book), scale, threads, say)
    return result | {"ladder": ladder, "budget_s": scale.budget_s}


def accuracy_lines(r: dict[str, Any]) -> list[str]:
    """The time-to-accuracy table and the accuracy ladder as text."""
    names = {
        "book": "book pipeline + recipe",
        "cnn_core_book": "cnn_core, book recipe",
        "cnn_core_fast": "cnn_core, fast recipe",
    }
    lines = [
        "",
        f"Time to {r['target']:.1%} test accuracy ({r['train_images']:,} training images, "
        f"checked on the {r['test_images']:,} test images after every validation; taking turns)",
        f"{'pipeline':<24} {'s to target':>11} {'images':>10} {'final acc':>9} "
        f"{'train s':>8} {'images/s':>9} {'speedup':>8}",
    ]
    for key, row in r["runs"].items():
        reached = row["seconds_to_target"] is not None
        seconds = f"{row['seconds_to_target']:.1f}" if reached else "not reached"
        images = f"{row['images_to_target']:,}" if reached else "-"
        speedup = f"{row['speedup']:.2f}×" if row["speedup"] else "-"
        lines.append(
            f"{names[key]:<24} {seconds:>11} {images:>10} {100 * row['final_accuracy']:>8.2f}% "
            f"{row['train_seconds']:>8.1f} {row['images_per_s']:>9,.0f} {speedup:>8}"
        )
    if not r["book_reached"]:
        lines.append("(the book never reached the target: speedups are against all its training)")
    fast = ", ".join(f"{k}={v}" for k, v in r["fast_recipe"].items())
    lines += [f"fast recipe: {fast}", ""]
    lines.append(f"Accuracy ladder: test accuracy after {r['budget_s']:g} s of training per row")
    lines.append(f"{'technique':<42} {'test acc':>8} {'train s':>8} {'epochs':>6}")
    for row in r["ladder"]:
        lines.append(
            f"{row['technique']:<42} {100 * row['test_accuracy']:>7.2f}% "
            f"{row['train_seconds']:>8.1f} {row['epochs']:>6.2f}"
        )
    return lines

"""``bench``'s time to accuracy: seconds of training until a target test accuracy, side by side,
and the stop rule's check.

Fashion-MNIST as in the book: 50,000 training / 10,000 validation images of the training file;
the timed runs validate on the 10,000 test images (each target's first crossing is noted and
the recipes run their whole schedule, for their final accuracy). The book's pipeline and
recipe (validating once per epoch, stopping at the target) runs once, taking turns with the
``fast`` and ``accurate`` recipes of each seed so machine noise hits them alike. Training
seconds exclude validation on every side. The stop-rule check trains ``fast`` with
``target_accuracy`` as a user does (validating on the held-out split) and scores the model it
leaves on the test images.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cnn_core import trainer
from cnn_core.callbacks import Callback
from cnn_core.data import ImageSet
from cnn_core.recipes import recipe_fields
from cnn_core.scoring import evaluate

from .book import Family, book_run
from .turns import alternate, core_run


@dataclass(frozen=True)
class AccuracyScale:
    """How much the time-to-accuracy part does."""

    train: int
    val: int  # held out as in the book (the stop-rule check validates on it)
    test: int | None  # test images (None: all 10,000)
    target: float  # every pipeline's target
    accurate_target: float  # accurate's second target
    book_epochs: int  # at most this many epochs for the book's pipeline
    epochs: dict[str, int]  # recipe → epochs (none: the recipe's own)
    seeds: int  # seeds per recipe (the book's pipeline runs once)
    turn: int  # batches of 64 images per turn
    budget_s: float  # ladder: training seconds per row


ACCURACY_FULL = AccuracyScale(50_000, 10_000, None, 0.91, 0.93, 15, {}, 5, 40, 60.0)
ACCURACY_QUICK = AccuracyScale(
    640, 200, 300, 0.5, 0.6, 2, {"fast": 1, "accurate": 2}, 2, 5, 1.0
)  # fmt: skip
TIMED_RECIPES = ("fast", "accurate")


class Crossings(Callback):
    """Notes the first validation reaching each of ``targets`` (the training seconds and
    images seen by then); the run itself goes on to its last epoch."""

    def __init__(self, targets: tuple[float, ...]):
        self.targets, self.hits = targets, {}

    def on_evaluation(self, state, metrics, result) -> None:
        for t in self.targets:
            if t not in self.hits and metrics["val_accuracy"] >= t:
                self.hits[t] = {
                    "seconds": metrics["train_seconds"],
                    "images": metrics["images_seen"],
                }


def _seed_row(result: trainer.FitResult, crossings: Crossings) -> dict[str, Any]:
    state = result.state
    return {
        "seed": state.config.seed,
        "to": {f"{t:g}": crossings.hits.get(t) for t in crossings.targets},
        "final_accuracy": state.last_evaluation["val_accuracy"],
        "train_seconds": state.train_seconds(),
        "images_per_s": state.images_seen() / max(1e-9, state.train_seconds()),
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over seeds: each target's seconds and images (over the seeds reaching it) and
    the fraction reaching it; final accuracy, training seconds, images/s."""
    to = {}
    for t in rows[0]["to"]:
        hits = [r["to"][t] for r in rows if r["to"][t]]
        to[t] = {
            "reached": len(hits) / len(rows),
            "seconds": _median([h["seconds"] for h in hits]),
            "images": _median([h["images"] for h in hits]),
        }
    return {
        "seeds": [r["seed"] for r in rows],
        "to": to,
        "final_accuracy": _median([r["final_accuracy"] for r in rows]),
        "final_accuracies": [r["final_accuracy"] for r in rows],
        "train_seconds": _median([r["train_seconds"] for r in rows]),
        "images_per_s": _median([r["images_per_s"] for r in rows]),
    }


def _book_summary(out: list[dict[str, Any]], n_train: int, target: float) -> dict[str, Any]:
    seconds, hit = 0.0, None
    for epoch, m in enumerate(out, start=1):
        seconds += m["seconds"]
        if hit is None and m["val_accuracy"] >= target:
            hit = {"seconds": seconds, "images": epoch * n_train}
    total = sum(m["seconds"] for m in out)
    return {
        "seeds": [1],
        "to": {
            f"{target:g}": {
                "reached": float(hit is not None),
                **(hit or {"seconds": None, "images": None}),
            }
        },
        "final_accuracy": out[-1]["val_accuracy"] if out else None,
        "final_accuracies": [out[-1]["val_accuracy"]] if out else [],
        "train_seconds": total,
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
        state = last.state
        return (
            f"test accuracy {state.last_evaluation['val_accuracy']:.4f} after "
            f"{state.train_seconds():.1f} s of training"
        )
    seconds = sum(m["seconds"] for m in out)
    return f"test accuracy {last['val_accuracy']:.4f} after {seconds:.1f} s of training"


def _recipe(name: str, scale: AccuracyScale) -> dict[str, Any]:
    fields = recipe_fields(name)
    return fields | {"epochs": scale.epochs.get(name, fields["epochs"])}


def time_to_accuracy(
    fam: Family,
    test: tuple[ImageSet, Any],
    scale: AccuracyScale,
    threads: int,
    say: Callable[[str], None] = lambda message: None,
    seeds: int | None = None,
) -> dict[str, Any]:
    """The book's pipeline (once) against ``fast`` and ``accurate`` (``seeds`` seeds each),
    taking turns, validating on the test images: seconds and images to each target, final
    accuracy, the fraction of seeds reaching it; and the stop rule's check (:func:`stop_rule`)."""
    data = dataclasses.replace(fam.bundle, val=test[0])  # validate on the test images
    seeds = seeds or scale.seeds
    book_out: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TIMED_RECIPES}
    for seed in range(1, seeds + 1):
        runs = []
        if seed == 1:
            book = book_run(
                fam,
                scale.book_epochs,
                scale.turn,
                threads,
                book_out,
                valid=test[1],
                until=scale.target,
            )
            runs.append(logged(book, book_out, say, "book epoch"))
        done: list[tuple[str, trainer.FitResult, Crossings]] = []
        for name in TIMED_RECIPES:
            fields = _recipe(name, scale)
            targets = (
                (scale.target, scale.accurate_target) if name == "accurate" else (scale.target,)
            )
            crossings, results = Crossings(targets), []
            turn = max(1, scale.turn * fam.batch_size // fields["batch_size"])
            run = core_run(
                fam,
                fields.pop("epochs"),
                turn,
                [],
                data=data,
                results=results,
                callbacks=[crossings],
                **fields | {"seed": seed},
            )
            runs.append(logged(run, results, say, f"{name} seed {seed}"))
            done.append((name, results, crossings))
        alternate(runs)
        for name, results, crossings in done:
            rows[name].append(_seed_row(results[0], crossings))
    runs_out = {"book": _book_summary(book_out, len(data.train), scale.target)}
    runs_out |= {name: _summary(r) for name, r in rows.items()}
    key = f"{scale.target:g}"
    book_s = runs_out["book"]["to"][key]["seconds"] or runs_out["book"]["train_seconds"]
    for row in runs_out.values():
        s = row["to"][key]["seconds"]
        row["speedup"] = book_s / s if s else None
    return {
        "target": scale.target,
        "accurate_target": scale.accurate_target,
        "train_images": len(data.train),
        "test_images": len(test[0]),
        "book_reached": runs_out["book"]["to"][key]["seconds"] is not None,
        "recipes": {name: _recipe(name, scale) for name in TIMED_RECIPES},
        "runs": runs_out,
        "stop_rule": stop_rule(fam, test[0], scale, seeds, say),
    }


def stop_rule(
    fam: Family, test: ImageSet, scale: AccuracyScale, seeds: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """What a target guarantees: ``fast`` with ``target_accuracy`` validating on the held-out
    split as a user's run does, then the model it leaves scored on the test images."""
    rows = []
    for seed in range(1, seeds + 1):
        config = dataclasses.replace(
            fam.config, **_recipe("fast", scale) | {"seed": seed, "target_accuracy": scale.target}
        )
        state = trainer.fit(config, data=fam.bundle).state
        score = evaluate(
            state.eval_model, test, fam.bundle.transform, fam.bundle.num_classes, config=config
        )
        target = state.target or {}
        rows.append(
            {
                "seed": seed,
                "stopped": bool(state.target),
                "seconds": target.get("time_to_target_s"),
                "images": target.get("images_to_target"),
                "val_accuracy": target.get("val_accuracy"),
                "test_accuracy": score.accuracy,
            }
        )
        say(f"stop rule seed {seed}: {rows[-1]}")
    return {
        "target": scale.target,
        "rows": rows,
        "stopped": sum(r["stopped"] for r in rows) / len(rows),
        "test_accuracy": _median([r["test_accuracy"] for r in rows]),
        "images": _median([r["images"] for r in rows if r["images"]]),
    }

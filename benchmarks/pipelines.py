"""The bench's speed part: the book's training pipeline and cnn_core's, side by side.

One process, the same images, model, seed and epochs (:mod:`benchmarks.book` prepares the data
and holds the book's loop; cnn_core runs ``trainer.fit`` with the default config). The
pipelines take turns every few batches (:mod:`benchmarks.turns`), so machine noise hits both
alike. Also measured: the techniques switched on one after another (each row trains with the
trainer's own step, :func:`cnn_core.trainer.train_batch`), images/s per batch size,
``torch.compile``, and one canvas prediction end to end.
"""

from __future__ import annotations

import dataclasses
import io
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, ImageDraw

from cnn_core import speed, trainer
from cnn_core.config import TrainConfig
from cnn_core.data.idx import DIGIT_NAMES
from cnn_core.models import create_model
from cnn_core.predict import Predictor

from .book import Family, book_run, new_model
from .turns import alternate, core_run

LADDER = (  # (technique, option): each row keeps the options of the rows above it
    ("book pipeline (torchvision dataset + DataLoader)", "loader"),
    ("preloaded uint8 tensors, no DataLoader", "preloaded"),
    ("batched tensor transforms", "batched"),
    ("explicit threads (all cores)", "threads"),
    ("channels_last", "channels_last"),
    ("bf16 autocast", "bf16"),
    ("fused Adam", "fused"),
    ("dropout masks from torch.rand", "rand_dropout"),
)
EXTRA = (  # on top of the whole ladder; not defaults
    ("+ batch 256 (not the book's recipe)", {"batch_size": 256}),
    ("+ torch.compile (not adopted)", {"compile": True}),
)


@dataclass(frozen=True)
class Scale:
    """How much a bench run does."""

    digits: tuple[int, int]  # (train, val) images: the book's Subset split
    faces: int  # generated faces: 80 % train, 20 % val
    epochs: tuple[int, int]  # digits, faces
    turn: int  # batches per turn when the pipelines take turns
    images: int  # images per timed round of a ladder / batch-size row (faces: a quarter)
    rounds: int  # timed rounds per row (rows take turns; the median is reported)
    batch_sizes: tuple[int, ...]
    latency_runs: int
    compile: bool


FULL = Scale((50_000, 10_000), 3_000, (2, 5), 40, 640, 9, (32, 64, 128, 256, 512), 50, True)
QUICK = Scale((640, 200), 100, (1, 1), 5, 64, 1, (32, 64), 5, False)


def compare(fam: Family, epochs: int, turn: int, threads: int, extra: bool) -> dict[str, Any]:
    """Book vs cnn_core taking turns every ``turn`` batches; ``extra`` adds cnn_core in fp32 and,
    for 10-class data, at batch 256 (the same epochs: fewer, larger steps)."""
    out: dict[str, list] = {"book": [], "cnn_core": []}
    runs = [
        book_run(fam, epochs, turn, threads, out["book"]),
        core_run(fam, epochs, turn, out["cnn_core"]),
    ]
    variants = {"cnn_core_fp32": {"precision": "fp32"}} if extra else {}
    if extra and not fam.binary:
        variants["cnn_core_batch256"] = {"batch_size": 256}
    for key, overrides in variants.items():
        every = turn * fam.batch_size // overrides.get("batch_size", fam.batch_size)
        runs.append(core_run(fam, epochs, max(1, every), out.setdefault(key, []), **overrides))
    alternate(runs)
    n, result = len(fam.bundle.train), {"batch_size": fam.batch_size, "epochs": epochs}
    result |= {"train_images": n, "val_images": len(fam.bundle.val)}
    for key, metrics in out.items():
        rate = n * len(metrics) / sum(m["seconds"] for m in metrics)
        accuracy = [m["val_accuracy"] for m in metrics]
        result[key] = {
            "images_per_s": rate,
            "val_accuracy": accuracy[-1],
            "val_accuracy_per_epoch": accuracy,
            "batch_size": variants.get(key, {}).get("batch_size", fam.batch_size),
        }
        result[key]["ratio"] = rate / result["book"]["images_per_s"]
    result["accuracy_delta_points"] = 100 * (
        result["cnn_core"]["val_accuracy"] - result["book"]["val_accuracy"]
    )
    return result


# ---- techniques one by one, batch sizes, canvas latency -------------------------------------
def batches(fam: Family, opts: frozenset[str], batch_size: int) -> Iterator[tuple[Any, Any]]:
    """Endless training batches: the book's DataLoader, or cnn_core's uint8 tensors with the
    train transform applied per sample or (``batched``) to the whole batch."""
    if "preloaded" not in opts:
        from torch.utils.data import DataLoader

        while True:
            yield from DataLoader(fam.book_train, batch_size, shuffle=True)
    data, gen = fam.bundle, torch.Generator().manual_seed(fam.config.seed)
    images, labels, n = data.train.images, data.train.labels, len(data.train)
    while True:
        perm = torch.cat([torch.randperm(n, generator=gen) for _ in range(-(-batch_size // n))])
        for start in range(0, len(perm) - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            if "batched" in opts:
                x = data.transform.train(images[idx], gen)
            else:
                x = torch.cat([data.transform.train(images[i : i + 1], gen) for i in idx.tolist()])
            yield x, labels[idx]


def runner(
    fam: Family,
    opts: frozenset[str],
    threads: int,
    batch_size: int = 0,
    compile: bool = False,
) -> Callable[[int], float]:
    """A warmed-up training loop with ``opts`` on, each batch one
    :func:`cnn_core.trainer.train_batch` (the trainer's step, its loss): ``run(n)`` trains at
    least ``n`` images and 3 batches and returns images/s."""
    batch_size = batch_size or fam.batch_size
    layout = torch.channels_last if "channels_last" in opts else torch.contiguous_format
    model = new_model(fam).to(memory_format=layout)
    if "rand_dropout" in opts:
        speed.use_rand_dropout(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=("fused" in opts) or None)
    precision = "bf16" if "bf16" in opts else "fp32"
    config = dataclasses.replace(fam.config, precision=precision, batch_size=batch_size)
    state = trainer.TrainState(config, fam.bundle, model, optimizer, torch.device("cpu"))
    state.train_module = torch.compile(model) if compile else model
    loss_fn = trainer.train_loss(config, fam.bundle)
    stream = batches(fam, opts, batch_size)

    def run(images: int) -> float:
        speed.set_threads(0) if "threads" in opts else torch.set_num_threads(threads)
        seen, start = 0, time.perf_counter()
        while seen < max(images, 3 * batch_size):  # at least 3 steps
            x, y = next(stream)
            trainer.train_batch(state, loss_fn, x.contiguous(memory_format=layout), y)
            seen += len(y)
        return seen / (time.perf_counter() - start)

    run(0)  # warm-up (torch.compile compiles here)
    return run


def take_turns(runners: dict[Any, Callable[[int], float]], images: int, rounds: int) -> dict:
    """Median images/s of each runner over ``rounds`` rounds in which they take turns."""
    rates: dict[Any, list[float]] = {key: [] for key in runners}
    for _ in range(rounds):
        for key, run in runners.items():
            rates[key].append(run(images))
    return {key: statistics.median(r) for key, r in rates.items()}


def default_options() -> frozenset[str]:
    """The options ``trainer.fit`` switches on by default on this machine's CPU."""
    policy = {
        "channels_last": speed.memory_format("cpu") == torch.channels_last,
        "bf16": speed.resolve_precision("auto", "cpu") == "bf16",
        "fused": speed.fused([torch.zeros(1)]),
        "rand_dropout": speed.rand_dropout_on("cpu"),
    }
    return frozenset({"preloaded", "batched", "threads"} | {k for k, on in policy.items() if on})


def ladder(fam: Family, images: int, scale: Scale, threads: int) -> list[dict[str, Any]]:
    """images/s with each technique switched on in turn, then the extras on top."""
    rows, opts = {}, frozenset()
    for label, opt in LADDER:
        opts = opts | {opt}
        rows[label] = (opts, {})
    rows |= {
        label: (opts, extra) for label, extra in EXTRA if scale.compile or "compile" not in extra
    }
    runners, setup = {}, {}
    for label, (row_opts, extra) in rows.items():
        start = time.perf_counter()
        runners[label] = runner(fam, row_opts, threads, **extra)
        setup[label] = time.perf_counter() - start
    rates = take_turns(runners, images, scale.rounds)
    book = rates[LADDER[0][0]]
    return [
        {
            "technique": label,
            "images_per_s": rate,
            "ratio": rate / book,
            "setup_seconds": setup[label],
        }
        for label, rate in rates.items()
    ]


def batch_curve(fam: Family, images: int, scale: Scale, threads: int) -> list[dict[str, Any]]:
    """Training images/s of the default pipeline per batch size."""
    runners = {bs: runner(fam, default_options(), threads, bs) for bs in scale.batch_sizes}
    rates = take_turns(runners, images, scale.rounds)
    return [{"batch_size": bs, "images_per_s": rate} for bs, rate in rates.items()]


def canvas_latency(runs: int) -> dict[str, Any]:
    """Milliseconds of one canvas prediction end to end: PNG decode, prepare_digit, v1 forward."""
    img = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(img).line([(80, 60), (200, 60), (120, 230)], fill="black", width=20)  # a "7"
    buf = io.BytesIO()
    img.save(buf, "PNG")
    model = create_model("v1", 1, 28, 10)
    predictor = Predictor(
        model, TrainConfig(), DIGIT_NAMES, input_kind="canvas", in_channels=1, image_size=28
    )
    times = []
    for _ in range(runs + 1):  # the first is a warm-up
        start = time.perf_counter()
        predictor.predict(buf.getvalue(), kind="canvas")
        times.append(1000 * (time.perf_counter() - start))
    times = sorted(times[1:])
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (runs - 1))],
        "runs": runs,
    }

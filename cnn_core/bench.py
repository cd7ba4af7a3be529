"""``python -m cnn_core bench``: the book's training pipeline and cnn_core's, side by side.

One process, the same images, model, seed and epochs (:mod:`cnn_core.bench_book` prepares
the data and holds the book's loop; cnn_core runs ``trainer.fit`` with the default config).
The pipelines take turns every few batches (``fit`` pauses and resumes exactly), so machine
noise hits both alike. Also measured: the techniques switched on one after another, images/s
per batch size, ``torch.compile``, and one canvas prediction end to end.
"""

from __future__ import annotations

import dataclasses
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from . import scoring, speed, trainer
from .bench_book import TORCHVISION_NAMES, Family, book_run, digits_family, faces_family, new_model
from .callbacks import Callback
from .config import TrainConfig
from .data import DatasetBundle
from .data.idx import DIGIT_NAMES
from .models import create_model

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
PARTS = ("speed", "accuracy")  # images/s tables; time to accuracy and the accuracy ladder
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


class Pause(Callback):
    """Stops ``fit`` every ``turn`` batches (it then resumes exactly from the checkpoint)."""

    def __init__(self, turn: int):
        self.target = turn  # stop once this many batches are done in all

    def should_stop(self, state) -> bool:
        return state.global_step >= self.target


def core_run(
    fam: Family,
    epochs: int,
    turn: int,
    out: list,
    *,
    data: DatasetBundle | None = None,
    results: list | None = None,
    **overrides,
) -> Iterator[None]:
    """``trainer.fit`` with the family's default config (plus ``overrides``) on ``data`` (default:
    the family's), pausing every ``turn`` batches; appends each epoch's metrics to ``out`` and
    the final FitResult to ``results``."""
    config = dataclasses.replace(fam.config, epochs=epochs, **overrides)
    data, pause, resume = data or fam.bundle, Pause(turn), None
    while not (result := trainer.fit(config, [pause], data=data, resume=resume)).completed:
        resume, pause.target = result.state.checkpoint_payload(), pause.target + turn
        yield
    out.extend(result.history)
    if results is not None:
        results.append(result)


def alternate(runs: list[Iterator[None]]) -> None:
    """Advance every run one turn at a time until all are finished."""
    done = object()
    while runs:
        runs = [run for run in runs if next(run, done) is not done]


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
    """A warmed-up training loop (the trainer's step, its loss) with ``opts`` on: ``run(n)``
    trains at least ``n`` images and 3 batches and returns images/s."""
    layout = torch.channels_last if "channels_last" in opts else torch.contiguous_format
    model = new_model(fam).to(memory_format=layout)
    if "rand_dropout" in opts:
        speed.use_rand_dropout(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=("fused" in opts) or None)
    loss_fn = scoring.make_loss(fam.bundle.num_classes, None)
    forward = torch.compile(model) if compile else model
    stream = batches(fam, opts, batch_size or fam.batch_size)

    def run(images: int) -> float:
        trainer.set_threads(0) if "threads" in opts else torch.set_num_threads(threads)
        seen, start = 0, time.perf_counter()
        while seen < max(images, 3 * (batch_size or fam.batch_size)):  # at least 3 steps
            x, y = next(stream)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in opts):
                logits = forward(x.contiguous(memory_format=layout))
            loss = (
                loss_fn(logits[:, 0].float(), y.float())
                if fam.binary
                else loss_fn(logits.float(), y)
            )
            loss.backward()
            optimizer.step()
            loss.item()
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
    from .predict import Predictor

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


# ---- the whole bench ------------------------------------------------------------------------
def run_bench(
    quick: bool = False,
    log: Callable[[str], None] = lambda message: None,
    parts: tuple[str, ...] = PARTS,
) -> dict[str, Any]:
    """Every measurement of ``parts`` (``quick``: small subsets, for tests); returns the results."""
    from .bench_accuracy import run_accuracy

    scale, threads = QUICK if quick else FULL, torch.get_num_threads()  # torch's default
    device, started = trainer.pick_device("auto"), time.perf_counter()
    result: dict[str, Any] = {
        "quick": quick,
        "machine": {
            "torch": torch.__version__,
            "cores": os.cpu_count(),
            "torch_default_threads": threads,
            "device": str(device),
            "cpu_native_bf16": speed.cpu_has_fast_bf16(),
            "precision_auto": speed.resolve_precision("auto", device),
        },
        "parts": list(parts),
        "families": {},
        "ladder": {},
        "batch_sizes": {},
        "time_to_accuracy": {},
    }
    say = lambda message: log(f"[{time.perf_counter() - started:6.1f} s] {message}")  # noqa: E731
    try:
        with tempfile.TemporaryDirectory(prefix="cnn-lab-bench-") as tmp:
            if "accuracy" in parts:
                root = Path(tmp) / "accuracy"
                result["time_to_accuracy"] = run_accuracy(root, quick, threads, say)
            if "speed" not in parts:
                return _finish(result, started, threads)
            families = [digits_family(n, Path(tmp), *scale.digits) for n in TORCHVISION_NAMES]
            families = [f for f in families if f] + [faces_family(scale.faces)]
            for fam in families:
                epochs = scale.epochs[fam.binary]
                say(f"{fam.name}: book vs cnn_core, {epochs} epoch(s)")
                result["families"][fam.name] = compare(
                    fam, epochs, scale.turn, threads, extra=not quick
                )
            for fam in {id(f): f for f in (families[0], families[-1])}.values():
                images = scale.images // (4 if fam.binary else 1)
                say(f"{fam.name}: techniques one by one, batch sizes")
                result["ladder"][fam.name] = ladder(fam, images, scale, threads)
                result["batch_sizes"][fam.name] = batch_curve(fam, images, scale, threads)
        say("canvas latency")
        result["canvas_latency"] = canvas_latency(scale.latency_runs)
    finally:
        torch.set_num_threads(threads)
    return _finish(result, started, threads)


def _finish(result: dict[str, Any], started: float, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    result["seconds"] = time.perf_counter() - started
    from .bench_report import goals

    result["goals"] = goals(result)
    return result

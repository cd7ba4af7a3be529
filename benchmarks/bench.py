"""The book's training pipeline against cnn_core's: speed and time to accuracy.

``python -m benchmarks`` (or ``make bench``).

``--part speed``: images/s of the book's pipeline against cnn_core's (:mod:`benchmarks.pipelines`);
``--part accuracy``: time to accuracy and the accuracy ladder (:mod:`benchmarks.accuracy`).
Narrative and measured numbers: ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cnn_core import speed

from .accuracy import run_accuracy
from .book import TORCHVISION_NAMES, digits_family, faces_family
from .common import emit, parser
from .pipelines import FULL, QUICK, batch_curve, canvas_latency, compare, ladder
from .report import format_report, goals

PARTS = ("speed", "accuracy")  # images/s tables; time to accuracy and the accuracy ladder


def run_bench(
    quick: bool = False,
    log: Callable[[str], None] = lambda message: None,
    parts: tuple[str, ...] = PARTS,
    seeds: int | None = None,
) -> dict[str, Any]:
    """Every measurement of ``parts`` (``quick``: small subsets, for tests; ``seeds``: seeds per
    recipe in the time to accuracy, default 5, quick 2); returns the results."""
    scale, threads = QUICK if quick else FULL, torch.get_num_threads()  # torch's default
    device, started = speed.pick_device("auto"), time.perf_counter()
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
                result["time_to_accuracy"] = run_accuracy(root, quick, threads, say, seeds)
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
    result["goals"] = goals(result)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks [--quick] [--part all|speed|accuracy] [--json]``."""
    p = parser("benchmarks", __doc__)
    p.add_argument("--quick", action="store_true", help="small subsets (a quick check)")
    p.add_argument(
        "--part",
        choices=("all", *PARTS),
        default="all",
        help="speed: images/s tables; accuracy: time to accuracy and the accuracy ladder",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds per recipe in the time to accuracy (default 5; --quick: 2)",
    )
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        p.error("--seeds must be at least 1")
    log = (lambda message: None) if args.json else (lambda m: print(m, file=sys.stderr))
    parts = PARTS if args.part == "all" else (args.part,)
    result = run_bench(quick=args.quick, log=log, parts=parts, seeds=args.seeds)
    emit(args, result, format_report(result))
    return 0

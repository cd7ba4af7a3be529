"""Command line: ``python -m cnn_core <command>``. User errors exit 2 with one clear line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import UserError

CONFIG_ARGS = (
    "dataset",
    "data_dir",
    "attribute",
    "model",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "dropout",
    "seed",
    "balance",
    "train_size",
    "val_size",
    "image_size",
    "threads",
    "workers",
    "device",
    "precision",
    "name",
)


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print ``payload`` as one JSON line with --json, else the human-readable ``text``."""
    print(json.dumps(payload, default=float) if getattr(args, "json", False) else text)


def add_config_args(p: argparse.ArgumentParser) -> None:
    """The TrainConfig fields as options (unset options keep the config defaults)."""
    p.add_argument("--dataset", help="dataset name (see `datasets`)")
    p.add_argument("--data-dir", help="folder holding the dataset (inside the allowed data roots)")
    p.add_argument("--attribute", help="CelebA attribute name (default Smiling)")
    p.add_argument("--model", help="architecture v1-v4 (see `models`)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"))
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--dropout", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--balance", choices=("none", "undersample", "weighted"))
    p.add_argument("--train-size", type=int)
    p.add_argument("--val-size", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--threads", type=int, help="torch threads (0 = all cores)")
    p.add_argument(
        "--workers", type=int, help="data-parallel workers for one run (with --executor ray)"
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    p.add_argument("--name")
    p.add_argument("--tag", action="append", dest="tags", help="a tag (repeatable)")


def config_from_args(args: argparse.Namespace):
    """A validated TrainConfig from the options that were given."""
    from .config import TrainConfig

    values = {k: getattr(args, k) for k in CONFIG_ARGS if getattr(args, k, None) is not None}
    if getattr(args, "augment", None) is not None:
        values["augment"] = args.augment
    if getattr(args, "tags", None):
        values["tags"] = args.tags
    return TrainConfig.from_dict(values)


def add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs-dir", help="checkpoints folder (default: ./checkpoints or $CNN_LAB_RUNS_DIR)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")


def add_subcommand(
    commands: argparse._SubParsersAction, name: str, func, text: str, *, id_arg: str | None
) -> argparse.ArgumentParser:
    """A sub-command running ``func``, with a positional ``id_arg`` (None: no id),
    ``--runs-dir`` and ``--json``."""
    p = commands.add_parser(name, help=text)
    if id_arg:
        p.add_argument(id_arg)
    add_runs_dir(p)
    p.set_defaults(func=func)
    return p


def apply_runs_dir(args: argparse.Namespace) -> None:
    if getattr(args, "runs_dir", None):
        os.environ["CNN_LAB_RUNS_DIR"] = str(Path(args.runs_dir).expanduser().resolve())


def history_row(m: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "seconds",
        "images_per_s",
    )
    return {k: m[k] for k in keys}


# ---- commands -------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from .callbacks import ProgressBar
    from .checkpoints import CHECKPOINT_NAME, run_dir
    from .data import load_dataset
    from .runs.store import RunStore
    from .runs.worker import recorded, start_foreground_run, train_run

    config = config_from_args(args).resolved()
    store = RunStore()
    run_id = start_foreground_run(store, config)
    path = run_dir(run_id) / CHECKPOINT_NAME
    with recorded(store, run_id):  # visible in the app; stoppable from there too
        data = load_dataset(config)
        if data.note:
            print(f"NOTE: {data.note}", file=sys.stderr)
        result = train_run(
            store, run_id, config, data=data, extra_callbacks=[] if args.quiet else [ProgressBar()]
        )
    history = [history_row(m) for m in result.history]
    payload = {
        "run_id": run_id,
        "checkpoint": str(path),
        "dataset_note": data.note,
        "status": "completed" if result.completed else "stopped",
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "history": history,
    }
    accuracy = f"val accuracy {payload['val_accuracy']:.4f}" if history else "no finished epoch"
    emit(args, payload, f"run {run_id} {payload['status']}: {accuracy}, checkpoint {path}")
    return 0


def checkpoint_arg(value: str) -> Path:
    """A user-given checkpoint path, confined to the checkpoint roots (the runs dir, which
    ``--runs-dir`` sets, and the shipped checkpoints); outside them, say which --runs-dir to pass."""
    from .settings import checkpoint_roots, resolve_within

    try:
        return resolve_within(value, checkpoint_roots(), "checkpoint")
    except UserError as exc:
        runs = Path(value).expanduser().resolve().parent.parent
        if not (runs / "runs.db").is_file():
            raise
        raise UserError(f"{exc}; this run's folder is in {runs}: pass --runs-dir {runs}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_checkpoint

    result = evaluate_checkpoint(
        checkpoint_arg(args.checkpoint), split=args.split, data_dir=args.data_dir
    )
    summary = result.summary()
    emit(
        args,
        summary,
        f"{summary['n']} images: accuracy {summary['accuracy']:.4f}, loss {summary['loss']:.4f}",
    )
    return 0


def _describe(pred) -> str:
    return "nothing drawn" if pred.empty else f"{pred.class_name} ({max(pred.probabilities):.1%})"


def _predict_faces(predictor, image, name: str, align: bool) -> tuple[dict, str]:
    """Every face of a photo (detected and aligned like CelebA unless ``align`` is off)."""
    from .faces import locate_faces

    located = locate_faces(image, align=align)
    faces = []
    for face in located.inputs:
        pred = predictor.predict(face.image, "face", crop_box=face.box)
        box = list(face.face.box) if face.face else None
        faces.append({"face": face.title, "box": box, **pred.to_dict()})
    if not faces:
        return {"file": name, "mode": located.mode, "faces": []}, (
            f"{name}: no face found (--no-align classifies the centre crop)"
        )
    text = "; ".join(
        f"{f['face']}{' at ' + str(tuple(f['box'])) if f['box'] else ''}: "
        f"{f['class_name']} ({max(f['probabilities']):.1%})"
        for f in faces
    )
    return {"file": name, "mode": located.mode, "faces": faces}, f"{name}: {text}"


def cmd_predict(args: argparse.Namespace) -> int:
    from .images import open_image
    from .predict import Predictor
    from .settings import data_roots, resolve_within

    predictor = Predictor.from_checkpoint(checkpoint_arg(args.checkpoint))
    roots = [*data_roots(), Path.cwd().resolve()]
    out, lines = [], []
    for name in args.files:
        path = resolve_within(name, roots, "input file")
        if args.input == "face":
            image = open_image(path)
            record, line = _predict_faces(predictor, image, name, align=not args.no_align)
        else:
            pred = predictor.predict(path, kind=args.input)
            record, line = {"file": name, **pred.to_dict()}, f"{name}: {_describe(pred)}"
        out.append(record)
        lines.append(line)
    emit(args, out, "\n".join(lines))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .data import DATASETS

    rows = [
        {
            "name": i.name,
            "family": i.family,
            "description": i.description,
            "default_batch_size": i.default_batch_size,
        }
        for i in DATASETS.values()
    ]
    emit(
        args, rows, "\n".join(f"{r['name']:<14} {r['family']:<7} {r['description']}" for r in rows)
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import describe_model, model_names

    rows = []
    for name in model_names():
        digits = describe_model(name, 1, 28, 10)
        faces = describe_model(name, 3, 64, 2)
        rows.append(
            {
                "name": name,
                "title": digits["title"],
                "rationale": digits["rationale"],
                "params_digits": digits["params"],
                "flops_digits": digits["flops"],
                "params_faces": faces["params"],
                "flops_faces": faces["flops"],
            }
        )
    text = "\n".join(
        f"{r['name']}  {r['title']}\n    {r['rationale']}\n    1x28x28/10: {r['params_digits']:,} params, "
        f"{r['flops_digits'] / 1e6:.1f} MFLOPs | 3x64x64/binary: {r['params_faces']:,} params, "
        f"{r['flops_faces'] / 1e6:.1f} MFLOPs"
        for r in rows
    )
    emit(args, rows, text)
    return 0


def cmd_demo_model(args: argparse.Namespace) -> int:
    from .callbacks import ProgressBar
    from .demo import DEMO_CHECKPOINT, build_demo_model

    path = checkpoint_arg(args.out) if args.out else DEMO_CHECKPOINT
    overrides = {"epochs": args.epochs} if args.epochs is not None else {}
    out = build_demo_model(path, [] if args.json else [ProgressBar()], **overrides)
    emit(
        args,
        out,
        f"demo model: {out['val_accuracy']:.2%} on {out['val_size']} held-out digits, "
        f"{out['bytes'] / 1e6:.2f} MB, {out['seconds']:.0f} s -> {out['path']}",
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import format_report, run_bench

    log = (lambda message: None) if args.json else (lambda m: print(m, file=sys.stderr))
    result = run_bench(quick=args.quick, log=log)
    emit(args, result, format_report(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_core", description="CNN Lab command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train in the foreground with a progress bar")
    add_config_args(p)
    add_runs_dir(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-dir")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    add_runs_dir(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files with a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--input",
        choices=("dataset", "canvas", "face"),
        default="dataset",
        help="face: photos; each face found is aligned like CelebA before the model sees it",
    )
    p.add_argument(
        "--no-align",
        action="store_true",
        help="with --input face: no detection, the centre crop (178×218 images pass unchanged)",
    )
    p.add_argument("files", nargs="+")
    add_runs_dir(p)
    p.set_defaults(func=cmd_predict)

    for name, func, text in (
        ("datasets", cmd_datasets, "list datasets"),
        ("models", cmd_models, "list models"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("demo-model", help="rebuild the shipped demo digits model")
    p.add_argument("--out", help="checkpoint to write (default: checkpoints/demo/checkpoint.pt)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (for quick checks)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    p.set_defaults(func=cmd_demo_model)

    p = sub.add_parser("bench", help="time the book's training pipeline against cnn_core's")
    p.add_argument("--quick", action="store_true", help="small subsets (a quick check)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of tables")
    p.set_defaults(func=cmd_bench)

    from .runs.cli import add_commands
    from .sweeps.cli import add_commands as add_sweep_commands

    add_commands(sub)
    add_sweep_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for user errors, printed as one line)."""
    args = build_parser().parse_args(argv)
    try:
        apply_runs_dir(args)
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

"""The top-level commands (train, evaluate, predict, datasets, models, demo-model, bench), the\nparser that gathers every command group, and ``main``. User errors exit 2 with one clear line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError
from .common import (
    add_config_args,
    add_runs_dir,
    apply_runs_dir,
    config_from_args,
    config_options,
    emit,
    option_flag,
    options_table,
    spec_file_for,
)

# the per-epoch fields of `train --json`: a stable contract, a subset of trainer.HISTORY_KEYS
JSON_HISTORY_KEYS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
    "images_per_s",
)
# the run's results (cnn_core.runs.results) as `train --json` reports them
RESULT_FIELDS = (
    "val_accuracy",
    "best_val_accuracy",
    "best_epoch_fraction",
    "ended_by",
    "ended_at",
    "end_detail",
    "target_accuracy",
    "target_status",
    "time_to_target_s",
    "images_to_target",
)


# ---- commands -------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from ..callbacks import ProgressBar
    from ..checkpoints import CHECKPOINT_NAME, run_dir
    from ..data import DataSpec, load_dataset
    from ..resolve import batch_note, resolve
    from ..runs import api as runs_api
    from ..runs.results import outcome
    from ..runs.store import RunStore
    from ..runs.worker import recorded, start_foreground_run, train_run
    from .runs import results_text

    given = config_from_args(args)
    if note := batch_note(given):
        print(f"NOTE: {note}", file=sys.stderr)
    config = resolve(given)
    store = RunStore()
    run_id = start_foreground_run(store, config)
    path = run_dir(run_id) / CHECKPOINT_NAME
    with recorded(store, run_id):  # visible in the app; stoppable from there too
        data = load_dataset(DataSpec.of(config))
        if data.note:
            print(f"NOTE: {data.note}", file=sys.stderr)
        result = train_run(
            store, run_id, config, data=data, extra_callbacks=[] if args.quiet else [ProgressBar()]
        )
    if result.state.data.note != data.note:  # what training added (whitening skipped)
        print(f"NOTE: {result.state.data.note}", file=sys.stderr)
    history = [{k: m[k] for k in JSON_HISTORY_KEYS} for m in result.history]
    run = runs_api.get_run(run_id)
    payload = {
        "run_id": run_id,
        "checkpoint": str(path),
        "dataset_note": result.state.data.note,
        "status": "completed" if result.completed else "stopped",
        **{k: run[k] for k in RESULT_FIELDS},
        "history": history,
    }
    text = f"run {run_id} {outcome(run)}: {results_text(run)}; checkpoint {path}"
    emit(args, payload, text)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_checkpoint
    from ..settings import cli_path

    data_dir = str(cli_path(args.data_dir, "--data-dir")) if args.data_dir else None
    result = evaluate_checkpoint(
        cli_path(args.checkpoint, "checkpoint"), split=args.split, data_dir=data_dir
    )
    summary = result.summary()
    emit(
        args,
        summary,
        f"{summary['n']} {summary['split']} images: accuracy {summary['accuracy']:.4f} "
        f"(95% CI {summary['ci_low']:.4f}-{summary['ci_high']:.4f}), loss {summary['loss']:.4f}",
    )
    return 0


def _describe(pred) -> str:
    return "nothing drawn" if pred.empty else f"{pred.class_name} ({max(pred.probabilities):.1%})"


def _predict_faces(predictor, image, name: str, align: bool) -> tuple[dict, str]:
    """Every face of a photo (detected and aligned like CelebA unless ``align`` is off)."""
    from ..faces import classify_faces

    located, answers = classify_faces(predictor, image, align=align)
    faces = [
        {
            "face": a.face.title,
            "box": list(a.face.face.box) if a.face.face else None,
            **a.prediction.to_dict(),
        }
        for a in answers
    ]
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
    from ..images import open_image
    from ..predict import Predictor
    from ..settings import cli_path

    predictor = Predictor.from_checkpoint(cli_path(args.checkpoint, "checkpoint"))
    out, lines = [], []
    for name in args.files:
        path = cli_path(name, "input file")
        if args.input == "face":
            image = open_image(path, name=name)
            record, line = _predict_faces(predictor, image, name, align=not args.no_align)
        else:
            pred = predictor.predict(path, kind=args.input, name=name)
            record, line = {"file": name, **pred.to_dict()}, f"{name}: {_describe(pred)}"
        out.append(record)
        lines.append(line)
    emit(args, out, "\n".join(lines))
    return 0


def cmd_options(args: argparse.Namespace) -> int:
    """The training options of train / submit / sweep: the README's table (or JSON)."""
    rows = [
        {"field": name, "flag": option_flag(name), **kwargs}
        for name, kwargs in config_options().items()
    ]
    emit(args, [{k: r[k] for k in ("field", "flag", "help")} for r in rows], options_table())
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..data import DATASETS
    from .health import cmd_fetch, cmd_import

    if getattr(args, "action", None) == "import":
        return cmd_import(args)
    if getattr(args, "action", None) == "fetch":
        return cmd_fetch(args)

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


def cmd_model_spec(args: argparse.Namespace) -> int:
    """``models --spec NAME``: the spec JSON; ``models --check FILE``: its shape table."""
    from ..data import input_geometry
    from ..models import architecture
    from ..models.spec import analyze, shape_text

    channels, size, classes = input_geometry(args.dataset, args.image_size)
    if args.spec:
        print(json.dumps(architecture(args.spec, channels, size, classes), indent=2))
        return 0
    spec = spec_file_for(args.check, args.dataset, args.image_size)
    norm, rows = analyze(spec, channels, size, classes)
    table = [
        {
            "layer": r.index,
            "name": r.name,
            "type": r.type,
            "output_shape": list(r.out_shape),
            "params": r.params,
            "flops": r.flops,
        }
        for r in rows
    ]
    lines = [f"{norm['name']} on {channels}x{size}x{size} ({args.dataset}, {classes} classes)"]
    lines += [
        f"{r.index:>3} {r.name:<14} {r.type:<16} {shape_text(tuple(r.out_shape)):<12} "
        f"{r.params:>10,} params {r.flops / 1e6:>9.2f} MFLOPs"
        for r in rows
    ]
    total = {"params": sum(r.params for r in rows), "flops": sum(r.flops for r in rows)}
    lines.append(f"total: {total['params']:,} params, {total['flops'] / 1e6:.2f} MFLOPs per image")
    emit(args, {"name": norm["name"], "layers": table, **total}, "\n".join(lines))
    return 0


def _model_row(name: str) -> dict[str, Any]:
    """One line of ``models``: params and FLOPs for digits and faces (None where a saved spec
    does not fit that input)."""
    from ..models import describe_model, model_title

    row: dict[str, Any] = {"name": name, "title": model_title(name), "rationale": ""}
    for key, geometry in (("digits", (1, 28, 10)), ("faces", (3, 64, 2))):
        try:
            desc = describe_model(name, *geometry)
        except UserError:
            row[f"params_{key}"] = row[f"flops_{key}"] = None
            continue
        row.update({"rationale": desc["rationale"], f"params_{key}": desc["params"]})
        row[f"flops_{key}"] = desc["flops"]
    return row


def _cost_text(params: int | None, flops: int | None) -> str:
    if params is None or flops is None:
        return "does not fit"
    return f"{params:,} params, {flops / 1e6:.1f} MFLOPs"


def cmd_models(args: argparse.Namespace) -> int:
    from ..models import model_names

    if args.spec or args.check:
        return cmd_model_spec(args)
    rows = [_model_row(name) for name in model_names()]
    text = "\n".join(
        f"{r['name']}  {r['title']}\n    {r['rationale']}\n"
        f"    1x28x28/10: {_cost_text(r['params_digits'], r['flops_digits'])} | "
        f"3x64x64/binary: {_cost_text(r['params_faces'], r['flops_faces'])}"
        for r in rows
    )
    emit(args, rows, text)
    return 0


def cmd_demo_model(args: argparse.Namespace) -> int:
    from ..callbacks import ProgressBar
    from ..demo import DEMO_CHECKPOINT, build_demo_model
    from ..settings import checkpoint_roots, resolve_within

    # a write: relative to the current folder, but only inside the runs dir or checkpoints/
    out_path = Path(args.out).expanduser().absolute() if args.out else None
    path = resolve_within(out_path, checkpoint_roots(), "--out") if out_path else DEMO_CHECKPOINT
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
    """Says where the bench is: beside the package, in the source checkout's ``benchmarks/``
    (it measures cnn_core from outside, so cnn_core never imports it)."""
    command = " ".join(["python -m benchmarks", *args.bench_args])
    raise UserError(
        f"the bench is not part of cnn_core: run `{command}` from the source checkout "
        "(or `make bench`)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_core", description="CNN Lab command line")
    sub = parser.add_subparsers(dest="command", required=True)
    from .health import add_health_command, add_import_args

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
        ("options", cmd_options, "list the training options (the README's table)"),
        ("models", cmd_models, "list models; print or check an architecture spec"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
        if name == "datasets":
            add_import_args(p)
    add_health_command(sub, add_config_args)
    group = p.add_mutually_exclusive_group()  # p: the models command
    group.add_argument(
        "--spec", metavar="NAME", help="print a model's spec as JSON (v1-v4 or saved)"
    )
    group.add_argument("--check", metavar="FILE", help="check a spec file; print its shape table")
    p.add_argument("--dataset", default="mnist", help="input shape of this dataset (default mnist)")
    p.add_argument("--image-size", type=int, help="input side in pixels (default: the dataset's)")

    p = sub.add_parser("demo-model", help="rebuild the shipped demo digits model")
    p.add_argument(
        "--out",
        help="checkpoint to write, inside the runs dir or checkpoints/ "
        "(default: checkpoints/demo/checkpoint.pt)",
    )
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (for quick checks)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    p.set_defaults(func=cmd_demo_model)

    p = sub.add_parser(
        "bench",
        help="where the bench is: python -m benchmarks, in the source checkout",
        add_help=False,
    )
    p.set_defaults(func=cmd_bench)

    from . import jobs, runs, sweeps

    runs.add_commands(sub)
    sweeps.add_commands(sub)
    jobs.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for user errors, printed as one line)."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":  # its options are the bench's own: named in the message
        args.bench_args = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        apply_runs_dir(args)
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

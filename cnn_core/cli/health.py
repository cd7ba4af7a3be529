"""``datasets import NAME archive.zip`` and ``health --dataset …`` for the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import UserError


def add_import_args(p: argparse.ArgumentParser) -> None:
    """``datasets [import NAME ARCHIVE | fetch celeba]``: without arguments the command lists
    datasets."""
    p.add_argument(
        "action",
        nargs="?",
        choices=("import", "fetch"),
        help="import a zip of <class>/<image>; fetch celeba: download CelebA",
    )
    p.add_argument("name", nargs="?", help="name of the dataset to create, add to or fetch")
    p.add_argument("archive", nargs="?", help="zip file (relative to the current folder)")
    p.add_argument(
        "--source",
        choices=("auto", "hf", "kaggle", "drive"),
        default="auto",
        help="fetch: where from (auto tries Hugging Face, then Kaggle, then Google Drive)",
    )
    p.add_argument("--data-dir", help="fetch: folder to fetch into (default: <data root>/celeba)")


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download CelebA with progress on stderr (licence first), then the layout check."""
    from ..data.celeba_fetch import fetch_celeba, progress_text

    if args.name != "celeba" or args.archive:
        raise UserError("usage: datasets fetch celeba [--source auto|hf|kaggle|drive] [--json]")

    def show(event: dict[str, Any]) -> None:
        print(progress_text(event), file=sys.stderr, flush=True)

    out = fetch_celeba(
        args.source, args.data_dir, show, lambda line: print(line, file=sys.stderr, flush=True)
    )
    _emit(
        args,
        out,
        f"CelebA ready in {out['folder']} ({out['layout']} layout, from {out['source']}): "
        f"{out['images']:,} images, {out['train']:,} train / {out['val']:,} val / "
        f"{out['test']:,} test",
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import a zip into a user dataset; skipped files listed with their reasons."""
    from ..data.builder import import_zip
    from ..settings import cli_path

    if not args.name or not args.archive:
        raise UserError("usage: datasets import NAME ARCHIVE.zip")
    path = cli_path(args.archive, "archive")
    if not path.is_file():
        raise UserError(f"archive {args.archive!r} is not a file")
    with open(path, "rb") as handle:
        report = import_zip(args.name, handle)
    lines = [f"{report.summary()} (--data-dir {report.path})"]
    lines += [f"  {cls}: {n}" for cls, n in report.added.items()]
    lines += [f"skipped {s['file']}: {s['reason']}" for s in report.skipped]
    _emit(args, report.to_dict(), "\n".join(lines))
    return 0


def add_health_command(sub: argparse._SubParsersAction, add_config_args) -> None:
    p = sub.add_parser(
        "health", help="label errors, duplicates, leaks, odd files and class balance of a dataset"
    )
    add_config_args(p)
    p.add_argument("--folds", type=int, default=3, help="k for the out-of-sample models (2-10)")
    p.add_argument("--no-labels", action="store_true", help="skip the label check (no training)")
    p.add_argument("--top", type=int, default=20, help="label issues shown in the text output")
    p.add_argument("--json", action="store_true", help="progress on stderr, one JSON line last")
    p.add_argument(
        "--background",
        action="store_true",
        help="run it as a background job (see `jobs`); print its id and return at once",
    )
    p.add_argument(
        "--job", metavar="ID", help="run the stored check ID (a background job's process)"
    )
    p.set_defaults(func=cmd_health)


def cmd_health(args: argparse.Namespace) -> int:
    from ..health import jobs
    from ..health.report import check_health
    from .common import config_from_args

    if args.job:
        return jobs.run_check(args.job)
    if not 2 <= args.folds <= 10:
        raise UserError("--folds must be between 2 and 10")
    config = config_from_args(args)
    if args.background:
        check_id = jobs.start_check(config, folds=args.folds, labels=not args.no_labels)
        _emit(args, {"kind": "health", "id": check_id}, check_id)
        return 0
    report = check_health(
        config,
        folds=args.folds,
        labels=not args.no_labels,
        progress=lambda message: print(message, file=sys.stderr),
    )
    _emit(args, report, _text(report, args.top))
    return 0


def _text(report: dict[str, Any], top: int) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in report["class_counts"]["all"].items())
    lines = [f"{report['name']}: {report['images']} images ({counts})"]
    issues = report["label_issues"]
    lines.append(f"likely label errors: {report.get('label_note') or len(issues)}")
    for row in issues[:top]:
        where = row.get("file") or f"{row['split']}[{row['index']}]"
        lines.append(
            f"  {where}: given {row['given']}, suggested {row['suggested']} "
            f"(score {row['score']:.3f})"
        )
    exact = sum(g["kind"] == "exact" for g in report["duplicates"])
    lines.append(
        f"duplicate groups: {len(report['duplicates'])} ({exact} exact); "
        f"leaks across splits: {len(report['leaks'])}"
    )
    lines.append(f"unreadable: {len(report['unreadable'])}; odd files: {len(report['odd'])}")
    return "\n".join(lines)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, default=float) if args.json else text)

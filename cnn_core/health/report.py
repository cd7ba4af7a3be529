"""``check_health(config)``: the whole data-health report as one JSON-able dict."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..data import DataSpec
from ..data.folder import EXTENSIONS
from ..errors import ImageError
from ..images import read_header
from .duplicates import NEAR_BITS, NEAR_CORRELATION, find_pairs, group_pairs
from .labels import (
    judge,
    label_issue_rows,
    out_of_sample_probabilities,
    rank_label_issues,
    suggestion_threshold,
)
from .source import HealthData, load_health_data

DEFAULT_EPOCHS = 2


def health_data(config: TrainConfig) -> HealthData:
    """The pool of images the report is about (see :func:`.source.load_health_data`)."""
    return load_health_data(DataSpec.of(config))


def check_health(
    config: TrainConfig,
    *,
    folds: int = 3,
    labels: bool = True,
    data: HealthData | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Label issues of the train and val images (k-fold out-of-sample probabilities + cleanlab;
    none and a ``label_note`` saying why when the fold models cannot judge; skipped with
    ``labels=False``), duplicate groups, leaks across splits, unreadable / odd files and class
    counts of the dataset ``config`` describes. ``config.epochs`` and ``config.model`` set the
    fold models (a config left at the default 8 epochs trains 2)."""
    started = time.perf_counter()
    if config.epochs == TrainConfig.epochs:
        config = dataclasses.replace(config, epochs=DEFAULT_EPOCHS)
    data = data or health_data(config)
    say = progress or (lambda message: None)
    report: dict[str, Any] = {
        "dataset": config.dataset,
        "name": data.name,
        "images": len(data),
        "class_names": data.class_names,
        "choices_version": data.choices_version,
        "class_counts": class_counts(data),
    }
    say("looking for duplicates")
    groups = group_pairs(len(data), find_pairs(data.images))
    report["duplicates"] = [_group_row(data, g) for g in groups]
    report["leaks"] = [row for row in report["duplicates"] if len(row["splits"]) > 1]
    report["near_threshold"] = {"phash_bits": NEAR_BITS, "thumbnail_correlation": NEAR_CORRELATION}
    report["unreadable"] = list(data.skipped or [])
    report["odd"] = odd_files(data.folder) if data.folder else []
    report["label_issues"] = []
    if labels:  # the images a run learns from: train and val (test is checked for leaks)
        learned = [i for i, split in enumerate(data.splits) if split != "test"]
        pool = data.subset(learned)
        given = pool.labels.numpy()
        probs = out_of_sample_probabilities(pool, config, folds, say)
        report["label_note"] = judge(given, probs, pool.class_names)
        if not report["label_note"]:
            flagged, scores = rank_label_issues(given, probs)
            report["label_issues"] = label_issue_rows(pool, probs, flagged, scores)
            report["label_threshold"] = suggestion_threshold(given, probs)
        for row in report["label_issues"]:
            row["pool_index"] = learned[row["pool_index"]]
        report["folds"] = folds
        report["oos_accuracy"] = float((probs.argmax(1) == given).mean())
    report["seconds"] = time.perf_counter() - started
    return report


def class_counts(data: HealthData) -> dict[str, dict[str, int]]:
    """``{split: {class: images}}`` plus ``"all"``."""
    out: dict[str, dict[str, int]] = {"all": dict.fromkeys(data.class_names, 0)}
    for split, label in zip(data.splits, data.labels.tolist(), strict=True):
        name = data.class_names[label]
        out["all"][name] += 1
        out.setdefault(split, dict.fromkeys(data.class_names, 0))[name] += 1
    return out


def _group_row(data: HealthData, group: dict) -> dict[str, Any]:
    members = group["members"]
    labels = {data.class_names[int(data.labels[i])] for i in members}
    return {
        "kind": group["kind"],
        "members": [{**data.ref(i), "pool_index": i} for i in members],
        "splits": sorted({data.splits[i] for i in members}),
        "labels": sorted(labels),
    }


def odd_files(folder: Path) -> list[dict[str, Any]]:
    """Files in class folders that are not images by extension, tiny, far from the usual size
    (as displayed, after EXIF orientation), or in an unusual pixel mode (headers only)."""
    rows: list[dict[str, Any]] = []
    sizes: Counter[tuple[int, int]] = Counter()
    modes: Counter[str] = Counter()
    headers: list[tuple[str, tuple[int, int], str]] = []
    for cls in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in cls.iterdir() if p.is_file() and not p.name.startswith(".")):
            key = f"{cls.name}/{path.name}"
            if path.suffix.lower() not in EXTENSIONS:
                rows.append({"file": key, "reason": "not read: extension is not an image type"})
                continue
            try:
                header = read_header(path, name=key)
            except ImageError:  # unreadable files are reported by the loader, with the reason
                continue
            headers.append((key, header.size, header.mode))
            sizes[header.size] += 1
            modes[header.mode] += 1
    if not headers:
        return rows
    usual_size, usual_mode = sizes.most_common(1)[0][0], modes.most_common(1)[0][0]
    for key, size, mode in headers:
        reasons = []
        if min(size) < 16:
            reasons.append(f"tiny ({size[0]}×{size[1]})")
        elif (
            max(size[0] / usual_size[0], usual_size[0] / size[0]) > 2
            or max(size[1] / usual_size[1], usual_size[1] / size[1]) > 2
        ):
            reasons.append(
                f"size {size[0]}×{size[1]} far from the usual {usual_size[0]}×{usual_size[1]}"
            )
        if mode != usual_mode and mode not in ("L", "RGB"):
            reasons.append(f"mode {mode} (most are {usual_mode})")
        if reasons:
            rows.append(
                {"file": key, "size": list(size), "mode": mode, "reason": "; ".join(reasons)}
            )
    return rows

"""Shared fixtures: every test gets its own runs/cache folders; torch uses 2 threads (1 per
pytest-xdist worker).

Before any test module is collected, runs, cache and data roots point at a temp folder of the
session (plus the shared real data), so test parameters (``model_names()`` reads the saved
specs) never see the user's own runs, specs or data.

A test needing something outside the repository (the real Fashion-MNIST: marker ``fashion``)
is skipped with what to install when it is missing, except under ``CI=true``, where that is a
failure: CI never goes green on a suite that silently skipped.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# two threads in one process; one per worker under pytest-xdist (two workers on two cores)
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
FASHION_DIR = SHARED_DATA / "fashion-mnist"
FASHION_HOW = (
    f"copy Fashion-MNIST's four IDX files (train-images-idx3-ubyte.gz …) into {FASHION_DIR}"
)


def require(present: bool, what: str, how: str) -> None:
    """Skip the calling test when ``what`` is missing, saying ``how`` to install it; under
    ``CI=true`` fail instead."""
    if present:
        return
    reason = f"{what} is missing: {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs every test)", pytrace=False)
    pytest.skip(reason)


def require_fashion() -> None:
    """The real Fashion-MNIST in the shared data folder (see :func:`require`)."""
    require(FASHION_DIR.is_dir(), f"the real Fashion-MNIST ({FASHION_DIR})", FASHION_HOW)


def pytest_runtest_setup(item):
    if item.get_closest_marker("fashion"):
        require_fashion()


SLOWEST = 25


def pytest_addoption(parser):
    parser.addoption(
        "--durations-file",
        metavar="PATH",
        help=f"write the {SLOWEST} slowest test phases (setup, call, teardown) to PATH",
    )


def pytest_terminal_summary(terminalreporter, config):
    """``--durations-file``: the slowest phases as ``--durations`` prints them, to a file (the
    baseline ``make test`` leaves behind for the next run to compare with)."""
    path = config.getoption("durations_file")
    if not path:
        return
    reports = [
        r
        for group in terminalreporter.stats.values()
        for r in group
        if getattr(r, "when", None) and hasattr(r, "duration")
    ]
    slowest = sorted(reports, key=lambda r: r.duration, reverse=True)[:SLOWEST]
    Path(path).write_text("".join(f"{r.duration:.2f}s {r.when} {r.nodeid}\n" for r in slowest))


def isolated_env(root: Path) -> dict[str, str]:
    """The settings variables putting runs, cache and data roots inside ``root`` (data roots:
    ``root/data``, created, and the shared real data)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    return {
        "CNN_LAB_RUNS_DIR": str(root / "runs"),
        "CNN_LAB_CACHE_DIR": str(root / "cache"),
        "CNN_LAB_DATA_ROOTS": os.pathsep.join([str(root / "data"), str(SHARED_DATA)]),
    }


SESSION_DIR = Path(tempfile.mkdtemp(prefix="cnnlab-tests-"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
os.environ.update(isolated_env(SESSION_DIR))  # conftest is imported before any test module


def pytest_unconfigure(config):
    """Remove the session folder when pytest ends, also in a process that then leaves without
    running ``atexit`` (mutmut's forked test runs end with ``os._exit``)."""
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point runs, cache and data roots at this test's temp folders (plus the shared real data)."""
    for name, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path


def small_fashion_config(**overrides):
    """A config on a small slice of the real Fashion-MNIST that trains in about a second."""
    from cnn_core.config import TrainConfig

    values = dict(
        dataset="fashion-mnist", model="v1", epochs=1, train_size=1000, val_size=400, threads=2
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def fashion_small():
    """The dataset bundle of ``small_fashion_config()`` loaded once per session."""
    require_fashion()
    from cnn_core.data import DataSpec, load_dataset

    return load_dataset(DataSpec.of(small_fashion_config()))

"""Every ``python -m cnn_core …`` line of the README runs as written, from a project root.

The project root is a stand-in: a temp folder laid out like the checkout (``checkpoints/`` is
the runs dir, ``data/`` the data root, holding tiny datasets of every kind, and the files the
README names: ``digit.png``, ``group.jpg``, ``archive.zip``, ``my.json``), so the lines read
no user's runs or data and train in seconds. Placeholders are filled from fixture runs of that
store (``<run_id>``, ``RUN_ID``, ``SWEEP``) or with a small value (``NAME``, ``N``, ``…``).

A line runs without its optional ``[…]`` parts and with all of them (the first of ``a|b``); a
required ``a|b|c`` runs once per value, and each of ``x | y`` alternatives. No line needs data
that is absent (every dataset is a tiny fixture); lines that cannot run here say why in
:data:`SKIPPED` / :data:`SKIPPED_IF`. Lines that train for minutes on the real data, or wait,
are ``slow``: they run once, with their options, as a real ``python -m cnn_core`` process.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import PROJECT
from tests.data_fixtures import make_celeba, make_idx_dataset, make_image_folder

README = PROJECT / "README.md"
PREFIX = "python -m cnn_core"

SKIPPED = {  # a command's start -> why it does not run here
    "demo-model": "it rewrites the shipped checkpoints/demo/checkpoint.pt; tests/test_demo.py "
    "runs it with --out",
}
SKIPPED_IF = {  # an option anywhere in the command -> why
    "--executor ray": "needs a Ray cluster (`ray start --head`); tests/test_ray_executor.py "
    "starts its own",
}
SLOW = (  # lines training for minutes on the real data, or waiting: a real process, slow
    "train --dataset mnist --model v1 --epochs 8",
    "train --lr-schedule",
    "train --model-spec",
    "train --model my-net",
    "sweep --dataset",
    "worker",  # exits after a minute without work
)
FILLED = {  # a placeholder after an option -> its value here
    ("--dataset", "…"): "mnist",
    ("--data-dir", "…"): "data",
    ("--threads", "N"): "1",
    ("--max-concurrent", "N"): "1",
}


# ---- reading the README -----------------------------------------------------------------------
def readme_lines(text: str) -> list[str]:
    """The README's ``python -m cnn_core …`` lines: in bash blocks (continuations joined,
    comments dropped) and in inline code."""
    lines: list[str] = []
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith(PREFIX):
                lines.append(" ".join(line.split()))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`(" + re.escape(PREFIX) + r"[^`]*)`", prose):
        lines.append(" ".join(span.split()))
    return lines


def commands(line: str) -> list[str]:
    """The concrete commands of one README line (without the ``python -m cnn_core`` prefix)."""
    rest = line.removeprefix(PREFIX).strip()
    parts = [p.strip() for p in rest.split(" | ")]  # `sweep list | show SWEEP | …`
    stem = parts[0].split()[0] + " " if len(parts) > 1 else ""
    out: list[str] = []
    for i, part in enumerate(parts):
        part = part if i == 0 else stem + part
        part = re.sub(  # inside an optional group, `a|b` is its first value
            r"\[([^\]]*)\]",
            lambda m: "[" + " ".join(t.split("|")[0] for t in m.group(1).split()) + "]",
            part,
        )
        bare = re.sub(r"\[[^\]]*\]", " ", part)
        full = re.sub(r"\[([^\]]*)\]", r" \1 ", part)
        for variant in dict.fromkeys([bare, full]):
            choices = [t.split("|") for t in variant.split()]  # required `a|b|c`: each value
            out.extend(" ".join(c) for c in itertools.product(*choices))
    return list(dict.fromkeys(out))


def cases() -> list:
    params = {}
    for line in readme_lines(README.read_text()):
        found = [c for c in commands(line) if c != "…"]  # "…" alone: prose naming the CLI
        for command in found:
            marks = []
            reason = next((r for k, r in SKIPPED.items() if command.startswith(k)), None)
            reason = reason or next((r for k, r in SKIPPED_IF.items() if k in command), None)
            fuller = next((c for c in found if c.startswith(command + " ")), None)
            if not reason and command.startswith(SLOW) and fuller:
                reason = f"a slow line runs once, with its options: {fuller}"
            if reason:
                marks.append(pytest.mark.skip(reason=reason))
            elif command.startswith(SLOW):
                marks.append(pytest.mark.slow)
            params[command] = pytest.param(command, marks=marks, id=command)
    return list(params.values())


# ---- the stand-in project root ----------------------------------------------------------------
def cli(*argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    from cnn_core.cli import main

    out, err, threads = StringIO(), StringIO(), torch.get_num_threads()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
    finally:
        torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


def trained(*argv: str) -> str:
    """The id of a run trained here with ``train *argv``."""
    code, out, err = cli("train", *argv, "--epochs", "1", "--threads", "1", "--quiet", "--json")
    assert code == 0, err
    return json.loads(out.splitlines()[-1])["run_id"]


def env_of(root: Path) -> dict[str, str]:
    return {
        "CNN_LAB_RUNS_DIR": str(root / "checkpoints"),
        "CNN_LAB_DATA_ROOTS": str(root / "data"),
        "CNN_LAB_CACHE_DIR": str(root / ".cache"),
    }


def build_root(root: Path) -> dict[str, str]:
    """Lay out the stand-in project root; returns the fixture ids placeholders are filled with."""
    data = root / "data"
    make_idx_dataset(data, n_train=120, n_test=30, name="mnist")
    make_idx_dataset(data, n_train=120, n_test=30, name="fashion-mnist")
    make_celeba(data, n=30)
    make_image_folder(data / "my_pets", n_per_class=8)
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(root / "digit.png")
    Image.new("RGB", (320, 240), (180, 140, 120)).save(root / "group.jpg")
    pets = make_image_folder(root / "pets-src", n_per_class=3)
    with zipfile.ZipFile(root / "archive.zip", "w") as archive:
        for image in sorted(pets.rglob("*.png")):
            archive.write(image, image.relative_to(pets).as_posix())
    code, spec, _ = cli("models", "--spec", "v1")
    (root / "my.json").write_text(spec)
    from cnn_core.models import MODELS
    from cnn_core.models.saved import save_spec

    save_spec({**json.loads(spec), "name": "my-net"}, list(MODELS))  # as the Builder saves it
    return {
        "digits": trained("--dataset", "mnist"),
        "faces": trained("--dataset", "celeba", "--data-dir", "data/celeba"),
        "sweep": finished_sweep(),
    }


def finished_sweep() -> str:
    """A completed two-trial sweep, its trials trained here."""
    import cnn_core.runs
    from cnn_core.config import TrainConfig
    from cnn_core.sweeps import create_sweep, run_sweep
    from tests.run_fixtures import submit_inline

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cnn_core.runs, "submit", submit_inline)
        config = TrainConfig(dataset="mnist", epochs=1, threads=1)
        sweep_id = create_sweep(config, {"optimizer": {"choices": ["adam", "sgd"]}}, trials=2)
        assert run_sweep(sweep_id, log=lambda m: None, poll=0.05)["status"] == "completed"
    return sweep_id


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The stand-in project root (built once); background workers it started are stopped."""
    from tests.run_fixtures import stop_supervisor

    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env_of(root).items():
            mp.setenv(name, value)
        mp.chdir(root)
        ids = build_root(root)
        yield root, ids
        from cnn_core.sweeps import list_sweeps, stop_sweep
        from cnn_core.sweeps.study import driver_alive

        for sweep in list_sweeps():
            if driver_alive(sweep["id"]):
                stop_sweep(sweep["id"], wait=10)
        stop_supervisor()


def run_id_for(action: str, ids: dict[str, str]) -> str:
    """The run ``runs <action> RUN_ID`` acts on, in the state the action needs."""
    from cnn_core.config import TrainConfig
    from cnn_core.runs import api

    if action in ("show", "export"):
        return ids["digits"]
    if action in ("extend", "delete"):
        return trained("--dataset", "mnist")
    run_id = api.submit(TrainConfig(dataset="mnist", epochs=1, threads=1), start_worker=False)
    if action == "resume":
        api.stop(run_id)
    return run_id


def sweep_id_for(action: str, ids: dict[str, str]) -> str:
    """The sweep ``sweep <action> SWEEP`` acts on: the finished one, or (stop, resume) a new
    one of one trial, stopped before it started for resume."""
    from cnn_core.config import TrainConfig
    from cnn_core.sweeps import create_sweep, stop_sweep

    if action not in ("stop", "resume"):
        return ids["sweep"]
    config = TrainConfig(dataset="mnist", epochs=1, threads=1)
    sweep_id = create_sweep(config, {"optimizer": {"choices": ["adam", "sgd"]}}, trials=1)
    if action == "resume":
        stop_sweep(sweep_id)
    return sweep_id


def fill(argv: list[str], ids: dict[str, str]) -> list[str]:
    """The README's placeholders replaced (``...``: "more options", dropped)."""
    out: list[str] = []
    for token in argv:
        if token == "...":
            continue
        if out and (out[-1], token) in FILLED:
            token = FILLED[(out[-1], token)]
        elif "<run_id>" in token:
            token = token.replace("<run_id>", ids["faces" if "face" in argv else "digits"])
        elif token == "RUN_ID":
            token = run_id_for(argv[1], ids)
        elif token == "SWEEP":
            token = sweep_id_for(argv[1], ids)
        elif token == "NAME":
            token = "pets"
        out.append(token)
    return out


# ---- the test ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", cases())
def test_readme_command_runs_as_written(command, root, monkeypatch):
    folder, ids = root
    for name, value in env_of(folder).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(folder)
    argv = fill(shlex.split(command), ids)
    redirect = argv[argv.index(">") + 1] if ">" in argv else None
    argv = argv[: argv.index(">")] if redirect else argv
    if command.startswith(SLOW):
        proc = subprocess.run(
            [sys.executable, "-m", "cnn_core", *argv],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
            capture_output=True,
            text=True,
            timeout=500,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        code, out, err = cli(*argv)
    assert code == 0, f"{' '.join(argv)}\n{err}"
    if "--json" in argv:
        json.loads(out.strip().splitlines()[-1])
    if redirect:
        (folder / redirect).write_text(out)

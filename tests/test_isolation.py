"""Tests never read the user's runs, specs or data: not even while pytest collects them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import PROJECT

SENTINEL = "sentinel-user-spec"


def test_a_saved_spec_of_the_user_changes_no_test_parameters(tmp_path):
    """A spec saved in the user's runs dir (here: ``CNN_LAB_RUNS_DIR`` set before pytest starts,
    as the project's own ``checkpoints/`` is by default) would become a model choice of every
    test parametrized over ``model_names()`` if collection read it."""
    specs = tmp_path / "user-runs" / "specs"
    specs.mkdir(parents=True)
    (specs / f"{SENTINEL}.json").write_text(json.dumps({"name": SENTINEL, "layers": []}))
    env = {
        **os.environ,
        "CNN_LAB_RUNS_DIR": str(tmp_path / "user-runs"),
        "CNN_LAB_DATA_ROOTS": str(tmp_path / "user-data"),
        "CNN_LAB_CACHE_DIR": str(tmp_path / "user-cache"),
    }
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    ids = collected.stdout.splitlines()
    assert any("test_models.py::" in line for line in ids)  # the parametrized modules were seen
    assert not [line for line in ids if SENTINEL in line]

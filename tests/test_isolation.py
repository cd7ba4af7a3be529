"""Tests never read the user's runs, specs or data: not even while pytest collects them; what a
test needs from outside the repository is skipped locally when missing, a failure in CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT, require

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


def test_a_missing_requirement_skips_saying_what_to_install_and_fails_under_ci(monkeypatch):
    require(True, "Chromium", "apt-get install chromium")  # present: nothing happens
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Chromium is missing: apt-get install"):
        require(False, "Chromium", "apt-get install chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium .CI runs every"):
        require(False, "Chromium", "apt-get install chromium")

"""The project's .streamlit/config.toml as Streamlit itself reads it in the project folder."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import PROJECT


def effective_options() -> str:
    """``streamlit config show`` run where `make run` runs: every option with its value."""
    done = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_make_run_watches_no_files_and_shows_no_deploy_button():
    shown = effective_options()
    assert re.search(r'^fileWatcherType = "none"$', shown, re.M)
    assert re.search(r'^toolbarMode = "viewer"$', shown, re.M)
    blacklist = re.search(r"^folderWatchBlacklist = \[(.*?)\]", shown, re.M | re.S).group(1)
    assert '".venv"' in blacklist  # `make dev` turns a watcher on: never over the virtualenv

"""Real-browser fixtures: one ``streamlit run`` per session on a free localhost port, driven by
Debian's headless Chromium through Playwright. Without chromium the tests skip saying what to
install — except under CI=true, where a missing browser is a failure."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT, isolated_env, require
from tests.run_fixtures import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_HOW = "apt-get install chromium chromium-driver"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _require_chromium() -> None:
    require(Path(CHROMIUM).is_file(), f"headless Chromium ({CHROMIUM})", CHROMIUM_HOW)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Wait until the app answers its health check (fails at once if it exited)."""

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(healthy, timeout, f"streamlit at {url} to answer", 0.3)


@pytest.fixture(scope="session")
def app_env(tmp_path_factory) -> dict[str, str]:
    """Environment of the app under test: its own runs, cache and data folders."""
    root = tmp_path_factory.mktemp("e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNN_LAB_")}
    env.update(isolated_env(root), CNN_LAB_E2E_ROOT=str(root))
    return env


def start_app(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start the app as ``make run`` does (``python -m ui.serve``: ``streamlit run app.py``
    with its imports paid at start) on a free port; returns (process, base url)."""
    port = free_port()
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ui.serve",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


@pytest.fixture(scope="session")
def app_url(app_env):
    """Base URL of a running app (one per test session)."""
    _require_chromium()
    proc, url = start_app(app_env, Path(app_env["CNN_LAB_E2E_ROOT"]) / "streamlit.log")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


# Opening a page by its URL path (/train) makes Streamlit's frontend probe
# /train/_stcore/health and /train/_stcore/host-config before it falls back to the root:
# expected 404s, not errors of the app. Every other failed response is recorded.
PROBES = ("/_stcore/health", "/_stcore/host-config")
# Pages whose images are replaced while the browser may still fetch them (the Runs page's live
# panel, Your data's class thumbnails before a page switch) send them as data URIs, so no
# /media/ 404 is expected: every one is recorded.


def _http_error(pg, response) -> None:
    if response.status >= 400 and not response.url.endswith(PROBES):
        pg.console_errors.append(f"HTTP {response.status} {response.url}")


def _console_error(pg, message) -> None:
    # the browser's own "Failed to load resource" lines are covered by _http_error
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        pg.console_errors.append(message.text)


@pytest.fixture
def page(browser):
    """A fresh page; console errors are collected in ``page.console_errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: _console_error(pg, m))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    pg.on("response", lambda r: _http_error(pg, r))
    yield pg
    context.close()


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script (``stApp`` reports notRunning)."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout
    )


def assert_no_exception(page) -> None:
    """No Streamlit exception box on the page."""
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()

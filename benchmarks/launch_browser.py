"""What a user waits for in the app, in real Chromium: from pressing Launch on the Train page
(recipe ``fast`` on Fashion-MNIST by default) to the run reading completed on the Runs page,
beside the run's own training seconds.

    python -m benchmarks.launch_browser [--recipe fast] [--epochs 1] [--json]

Starts the app as ``make run`` does (``python -m ui.serve``, which keeps a worker ready) on a
free port with a fresh runs folder, opens the Train page once (a visitor's first page), picks
the recipe, launches, follows "Watch it learn on the Runs page" and waits for the run's
status to read completed; then the same launch in a fresh app while the browser stays on
the Train page. Prints, for each, Launch → completed, the run's training seconds (validation
excluded) and the difference (what is not training), and the ratio of training seconds
(what watching the live curves costs the run on a small machine). Needs
Debian's ``/usr/bin/chromium`` and playwright (``requirements-test.txt``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .common import PROJECT, parser

CHROMIUM = "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'  # a script run ended
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "ui.serve", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    cmd += ["--browser.gatherUsageStats", "false"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"the app did not start (log: {log})")


def _pick(page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label, exact=True)
    for _ in range(3):
        box.click()
        choice = page.get_by_role("option").filter(has_text=option).first
        try:
            choice.wait_for(timeout=10_000)
            choice.click()
            return
        except Exception:  # noqa: BLE001 - a rerun closed the list: open it again
            page.keyboard.press("Escape")
    raise TimeoutError(f"no option {option!r} in {label!r}")


def _store_status(folder: str) -> tuple[float | None, str]:
    from cnn_core.runs.store import RunStore

    os.environ["CNN_LAB_RUNS_DIR"] = folder
    rows = RunStore().query("SELECT train_seconds, status FROM runs")
    return (rows[0][0], rows[0][1]) if rows else (None, "")


def measure(recipe: str, epochs: int, watch: bool) -> dict[str, float]:
    """One launch in a fresh app: seconds from the Launch click; ``watch``: on the Runs page
    (live curves), else staying on the Train page."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "CNN_LAB_RUNS_DIR": folder}
        app, url = _serve(env, Path(folder) / "app.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}/train")
                page.get_by_role("button", name="Launch training").wait_for(timeout=120_000)
                _pick(page, "Dataset", "fashion-mnist")
                _pick(page, "Recipe", recipe)
                epochs_box = page.get_by_label("Epochs", exact=True)
                epochs_box.fill(str(epochs))
                epochs_box.press("Enter")
                page.wait_for_selector(IDLE)  # the form's rerun after the last edit
                clicked = time.monotonic()
                page.get_by_role("button", name="Launch training").click()
                page.get_by_text("Watch it learn on the Runs page").wait_for()
                if watch:
                    page.get_by_text("Watch it learn on the Runs page").click()
                    page.locator(".js-plotly-plot").first.wait_for(timeout=300_000)
                    page.wait_for_function(  # the run table's status cell (a hidden grid cell)
                        "() => document.body.textContent.includes('✅ completed')",
                        timeout=600_000,
                    )
                else:
                    while _store_status(folder)[1] in ("", "queued", "running"):
                        time.sleep(0.05)
                completed = time.monotonic() - clicked
                browser.close()
        finally:
            app.terminate()
            app.wait(30)
        seconds, status = _store_status(folder)
        assert status == "completed" and seconds is not None, status
    return {"completed_s": completed, "train_s": seconds, "not_training_s": completed - seconds}


def main() -> None:
    p = parser("benchmarks.launch_browser", __doc__)
    p.add_argument("--recipe", default="fast")
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    result = {
        "watching": measure(args.recipe, args.epochs, watch=True),
        "train page": measure(args.recipe, args.epochs, watch=False),
    }
    ratio = result["watching"]["train_s"] / result["train page"]["train_s"]
    if args.json:
        print(json.dumps({**result, "watching_train_ratio": ratio}))
        return
    print(f"{args.recipe} on fashion-mnist, {args.epochs} epoch(s), in Chromium:")
    for where, numbers in result.items():
        print(f"  {where}: " + ", ".join(f"{k} {v:.2f} s" for k, v in numbers.items()))
    print(f"  training seconds while watching / on the Train page: {ratio:.2f}×")


if __name__ == "__main__":
    main()

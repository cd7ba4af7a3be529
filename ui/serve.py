"""Start the app: ``python -m ui.serve [streamlit options]`` is ``streamlit run app.py`` whose
pages' imports (torch, captum, pandas, optuna, cnn_core, ui …) are paid at server start, in a
background thread, instead of by the first visitor's page. The objects they create are then
frozen out of the garbage collector: Streamlit collects all generations after every script
run (and every live fragment refresh), which took about half a second with them in view.
The runs' supervisor starts with the server and stays ready while it lives (its pid in
``CNN_LAB_APP_PID``), so a Launch does not wait for a worker to start and import the trainer."""

from __future__ import annotations

import ast
import gc
import importlib
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST = ("home", "runs", "train")  # the pages a newcomer opens first: their imports go first


def page_imports() -> list[str]:
    """The modules app.py and every page import at their top, in the order they name them
    (app.py, then the ``FIRST`` pages, then the others)."""
    pages = sorted((ROOT / "pages").glob("*.py"), key=lambda p: (p.stem not in FIRST, p.stem))
    found: dict[str, None] = {}
    for script in [ROOT / "app.py", *pages]:
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                found.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found[node.module] = None  # and any names that are modules (cnn_core.runs)
                found.update(dict.fromkeys(f"{node.module}.{alias.name}" for alias in node.names))
    return list(found)


def warm(wait_s: float = 60.0) -> None:
    """Once the server's runtime exists (caches declared at import bind to it), import every
    page's modules; a name that is no module, or a module that fails, is left to its page
    (which reports the failure when it is visited). Then freeze what they made for the GC."""
    from streamlit import runtime

    from cnn_core.runs import ensure_worker

    ensure_worker(ready=True)
    deadline = time.monotonic() + wait_s
    while not runtime.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in page_imports():
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - see above
            continue
    gc.collect()
    gc.freeze()


def main() -> int:
    from streamlit.web import cli

    from cnn_core.settings import APP_PID_ENV

    os.environ[APP_PID_ENV] = str(os.getpid())
    threading.Thread(target=warm, name="cnn-lab-warm-imports", daemon=True).start()
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())

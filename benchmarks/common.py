"""What every benchmark shares: its command line (named after the module, described by the first
paragraph of its docstring, ``--json`` for one JSON line) and its output (``emit``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnn_core.cli.common import emit

__all__ = ["APP", "PROJECT", "emit", "parser"]

PROJECT = Path(__file__).resolve().parents[1]  # the source checkout
APP = PROJECT / "app.py"  # the Streamlit app, for AppTest-driven benchmarks


def parser(module: str, doc: str | None, json: bool = True) -> argparse.ArgumentParser:
    """The argument parser of benchmark ``module`` (``benchmarks.x``): ``python -m`` it, with the
    docstring's first paragraph as description and (``json``) a ``--json`` flag."""
    first = (doc or "").strip().split("\n\n")[0]
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=" ".join(first.split()))
    if json:
        p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    return p

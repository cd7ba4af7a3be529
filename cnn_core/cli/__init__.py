"""Command line: ``python -m cnn_core <command>`` (one package; the run and sweep command groups
live beside the top-level commands, and ``runs`` / ``sweeps`` hold no argparse)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]

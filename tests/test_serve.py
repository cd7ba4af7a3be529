"""The app launcher (``python -m ui.serve``, what ``make run`` starts)."""

from __future__ import annotations

from ui.serve import page_imports


def test_the_launcher_warms_what_every_page_imports():
    """``python -m ui.serve`` (make run) imports at server start what app.py and the pages
    import at their top, submodules named in ``from package import module`` included."""
    names = page_imports()
    for name in ("torch", "pandas", "cnn_core.runs", "cnn_core.interpret", "ui.run_widgets"):
        assert name in names, name
    assert "cnn_core.runs" in names and names.index("streamlit") < names.index("ui.sidebar")

"""The "Get CelebA" panel (any dataset's ``fetch_label``): the licence terms first, a source picker, a progress bar with
bytes, rate and time left, then the layout check (for any dataset whose registry entry can
fetch it)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from cnn_core.data.base import DatasetInfo
from cnn_core.data.celeba_fetch import progress_text
from cnn_core.errors import UserError
from ui.widgets import show_user_error

SOURCES = {
    "auto": "first that works (Hugging Face, Kaggle, Google Drive)",
    "hf": "Hugging Face",
    "kaggle": "Kaggle (needs your Kaggle token)",
    "drive": "Google Drive (official files)",
}


def get_dataset_panel(info: DatasetInfo, key: str) -> bool:
    """Offer to download ``info``'s dataset; True once it has been fetched in this session."""
    if info.fetch is None:
        return False
    if done := st.session_state.get(f"{key}_fetched"):
        st.success(
            f"{info.name} is ready in {done['folder']}: {done['images']:,} images "
            f"({done['train']:,} train / {done['val']:,} val / {done['test']:,} test).",
            icon="✅",
        )
        return True
    with st.container(border=True):
        st.markdown(f"**{info.fetch_label}**")
        st.caption(info.fetch_terms.format(folder="your first data root"))
        agreed = st.checkbox("I accept these terms", key=f"{key}_terms")
        source = st.selectbox("Source", list(SOURCES), format_func=SOURCES.get, key=f"{key}_src")
        if not st.button(info.fetch_label, type="primary", disabled=not agreed, key=f"{key}_go"):
            return False
        bar = st.progress(0.0, text="starting…")
        lines = st.empty()
        said: list[str] = []

        def show(event: dict[str, Any]) -> None:
            share = event["done"] / event["total"] if event["total"] else 0.0
            bar.progress(min(1.0, share), text=progress_text(event))

        def log(line: str) -> None:
            said.append(line)
            lines.caption("  \n".join(said[-4:]))

        try:
            result = info.fetch(source, None, show, log)
        except UserError as exc:
            show_user_error(exc)
            return False
        st.session_state[f"{key}_fetched"] = result
        st.rerun()
    return False

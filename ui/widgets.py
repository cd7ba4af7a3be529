"""Small reusable widgets: image grids, run labels and pickers, error display."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch
from matplotlib import colormaps
from PIL import Image

from cnn_core.errors import UserError
from cnn_core.images import open_image
from cnn_core.runs.results import outcome

STATUS_ICONS = {
    "queued": "⏳",
    "running": "🏃",
    "completed": "✅",
    "stopping": "⏹️",
    "stopped": "⏹️",
    "failed": "❌",
    "interrupted": "⚠️",
    "diverged": "💥",  # completed by diverging (cnn_core.runs.results.outcome)
}
ACTIVE = ("queued", "running")
LIVE_S = 1.0  # seconds between refreshes of live views (sidebar, run table and panel) while active


def to_display(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A [C,H,W] or [H,W] tensor/array (uint8 or float 0-1) as an HxW(x3) uint8 array."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    return a


def data_uri(image: Image.Image, fmt: str = "PNG") -> str:
    """``image`` encoded inside a ``data:`` URI. It travels in the page's own message, so a
    rerun or page switch that replaces it leaves no /media/ file for a fetch in flight to miss
    (Streamlit drops a replaced media file at once: the browser got a 404)."""
    out = io.BytesIO()
    image.save(out, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(out.getvalue()).decode()}"


@st.cache_data(max_entries=4096, show_spinner=False)
def thumbnail_uri(path: str, mtime_ns: int, side: int = 144) -> str:
    """A JPEG thumbnail (at most ``side`` px) of an image file as a data URI, made once per
    file version (``mtime_ns``), decoded as training decodes it (upright, see
    :func:`cnn_core.images.open_image`); an unreadable file gives a grey square."""
    try:
        thumb = open_image(path, draft=(side, side)).convert("RGB")
    except UserError:
        thumb = Image.new("RGB", (side, side), (128, 128, 128))
    thumb.thumbnail((side, side))
    return data_uri(thumb, "JPEG")


def thumbnails(files: Sequence[Path], width: int = 72) -> None:
    """Small thumbnails of image files, captioned with their names."""
    uris = [thumbnail_uri(str(p), p.stat().st_mtime_ns) for p in files]
    st.image(uris, width=width, caption=[p.name for p in files])


def image_grid(
    images: Sequence[Any], captions: Sequence[str] | None = None, columns: int = 8, width: int = 84
) -> None:
    """Images in rows of ``columns``, each with an optional caption."""
    captions = list(captions) if captions is not None else [""] * len(images)
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for col, img, cap in zip(
            cols, images[start : start + columns], captions[start : start + columns], strict=False
        ):
            col.image(to_display(img), caption=cap or None, width=width)


def run_label(run: dict[str, Any]) -> str:
    """``⏳ name · v1 · mnist · running`` — how a run is named everywhere in the UI."""
    name, status = run.get("name") or run["id"], outcome(run)
    return f"{STATUS_ICONS.get(status, '')} {name} · {run['model']} · {run['dataset']} · {status}"


NOTHING = ""  # how optional_select holds "none chosen"


def optional_select(
    where: Any,
    label: str,
    options: Sequence[Any],
    none_text: str,
    key: str,
    format_func: Callable[[Any], str] = str,
    **kwargs: Any,
) -> Any:
    """A select box whose first entry, ``none_text`` (e.g. "any"), means "none chosen": the
    chosen option, or None for that entry. The entry is held as ``NOTHING``, not None, which
    Streamlit shows as its placeholder ("Choose an option"); it is sent again on every run, so
    a ``none_text`` that changes (``"predicted: 7"``) is shown as it is now."""
    if st.session_state.get(key, NOTHING) == NOTHING:
        st.session_state[key] = NOTHING
    value = where.selectbox(
        label,
        [NOTHING, *options],
        format_func=lambda o: none_text if o == NOTHING else format_func(o),
        key=key,
        **kwargs,
    )
    return None if value == NOTHING else value


def show_user_error(exc: UserError) -> None:
    """A clear message for a user error (no traceback)."""
    st.error(str(exc), icon="🚫")


def colourise(
    amap: np.ndarray, signed: bool, cmap: str = "inferno"
) -> tuple[np.ndarray, np.ndarray]:
    """RGB colours in [0, 1] and blend weights in [0, 1] of a heat / attribution map.

    Signed maps use RdBu centred at 0 (red: evidence for the class, blue: against) scaled to
    ±max|value|; unsigned maps use ``cmap`` from their minimum to their maximum.
    """
    amap = np.nan_to_num(np.asarray(amap, dtype=np.float32))
    if signed:
        limit = float(np.abs(amap).max()) or 1.0
        scaled = amap / limit
        return colormaps["RdBu_r"]((scaled + 1) / 2)[..., :3], np.abs(scaled)
    span = float(amap.max() - amap.min()) or 1.0
    scaled = (amap - amap.min()) / span
    return colormaps[cmap](scaled)[..., :3], scaled


def heat_overlay(
    image: np.ndarray,
    heat: np.ndarray,
    opacity: float,
    *,
    signed: bool = False,
    cmap: str = "inferno",
) -> np.ndarray:
    """``image`` (H×W×3 uint8) with ``heat`` (resized to it when its size differs) coloured by
    :func:`colourise` and blended on top, each pixel weighted by ``opacity`` × its strength."""
    h, w = image.shape[:2]
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape != (h, w):
        heat = np.asarray(Image.fromarray(heat).resize((w, h), Image.BILINEAR))
    colours, weight = colourise(heat, signed, cmap)
    alpha = opacity * weight[..., None]
    return np.clip(image * (1 - alpha) + colours * 255.0 * alpha, 0, 255).round().astype(np.uint8)

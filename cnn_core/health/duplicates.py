"""Exact and near duplicates by a batched perceptual hash (pHash: DCT of a 32×32 greyscale
thumbnail, 64 bits from the sign of the 8×8 low frequencies against their median, as in
``imagehash.phash``), confirmed by the pixel correlation of small thumbnails; groups spanning
splits are leaks. Near copies found: added noise, brightness / contrast changes, re-encoding;
not found: shifts or crops (a 1-pixel shift of a 28×28 image moves ~10 of the 64 bits)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import dct

NEAR_BITS = 6  # pHash distance (of 64 bits) at most this …
NEAR_CORRELATION = 0.995  # … and pixel correlation of the 16×16 thumbnails at least this


def _grey(images: torch.Tensor, size: int) -> torch.Tensor:
    x = images.float().mean(1, keepdim=True) / 255.0
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def phash(images: torch.Tensor) -> np.ndarray:
    """64-bit perceptual hashes (uint64 ``[N]``) of uint8 images ``[N, C, H, W]``."""
    if not len(images):
        return np.zeros(0, dtype=np.uint64)
    small = _grey(images, 32)[:, 0].numpy().astype(np.float64)
    freq = dct(dct(small, axis=1), axis=2)[:, :8, :8].reshape(len(images), 64)
    bits = freq > np.median(freq, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8")[:, 0].astype(np.uint64)


def _digests(images: torch.Tensor) -> list[str]:
    return [hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in images]


def find_pairs(images: torch.Tensor, chunk: int = 256) -> list[tuple[int, int, str, int]]:
    """``(i, j, "exact" | "near", hash distance)`` for every duplicate pair, i < j."""
    hashes = phash(images)
    digests = _digests(images)
    thumbs = _grey(images, 16).flatten(1).numpy()
    thumbs -= thumbs.mean(1, keepdims=True)
    thumbs /= np.sqrt((thumbs**2).sum(1, keepdims=True)) + 1e-9
    pairs = []
    for start in range(0, len(hashes), chunk):
        block = hashes[start : start + chunk]
        dist = np.bitwise_count(block[:, None] ^ hashes[None, :])
        for a, b in zip(*np.nonzero(dist <= NEAR_BITS), strict=True):
            i, j = start + int(a), int(b)
            if j <= i:
                continue
            if digests[i] == digests[j]:
                pairs.append((i, j, "exact", int(dist[a, b])))
            elif float(thumbs[i] @ thumbs[j]) >= NEAR_CORRELATION:
                pairs.append((i, j, "near", int(dist[a, b])))
    return pairs


def group_pairs(n: int, pairs: list[tuple[int, int, str, int]]) -> list[dict]:
    """Connected groups of duplicates: ``{"kind", "members"}`` (kind "exact" when every pair in
    the group is byte-identical in pixels), largest first."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _, _ in pairs:
        parent[find(i)] = find(j)
    groups: dict[int, dict] = {}
    for i, j, kind, _ in pairs:
        g = groups.setdefault(find(i), {"kind": "exact", "members": set()})
        g["members"].update((i, j))
        if kind == "near":
            g["kind"] = "near"
    out = [{"kind": g["kind"], "members": sorted(g["members"])} for g in groups.values()]
    return sorted(out, key=lambda g: (-len(g["members"]), g["members"][0]))

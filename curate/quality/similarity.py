"""Pixel-level confirmation of near-duplicate candidates.

A 64-bit perceptual hash cannot tell "the same radiograph, re-processed" from
"another knee of similar shape": centred knee radiographs of different people
collide within a few bits. What separates them is fine texture (trabecular bone,
noise grain), which survives re-encoding, resizing, a small shift and a change of
brightness, but differs between two knees. So the pair is aligned by phase
correlation and compared on its high-pass detail.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from curate.imaging import DecodeFailure, read_image

__all__ = ["detail_signature", "detail_similarity", "SignatureCache"]

_SIZE = 128
_MAX_SHIFT = 12  # pixels at 128: about 10% of the image


def detail_signature(pixels8: np.ndarray, size: int = _SIZE) -> np.ndarray:
    """High-pass detail of the image at ``size`` x ``size``, zero mean and unit variance."""
    small = np.asarray(Image.fromarray(pixels8).resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    detail = small - gaussian_filter(small, 2.0)
    std = float(detail.std())
    return (detail - detail.mean()) / (std if std > 1e-6 else 1.0)


def detail_similarity(a: np.ndarray, b: np.ndarray, max_shift: int = _MAX_SHIFT) -> float:
    """Correlation of two detail signatures after the best shift within ``max_shift`` pixels.

    About 1 for the same image re-encoded, resized, shifted or brightened; near 0
    for different knees, however alike their outlines.
    """
    spectrum = np.fft.rfft2(a) * np.conj(np.fft.rfft2(b))
    spectrum /= np.abs(spectrum) + 1e-9
    surface = np.fft.irfft2(spectrum, s=a.shape)
    n = a.shape[0]
    allowed = np.zeros_like(surface, dtype=bool)
    allowed[: max_shift + 1, : max_shift + 1] = True
    allowed[-max_shift:, : max_shift + 1] = True
    allowed[: max_shift + 1, -max_shift:] = True
    allowed[-max_shift:, -max_shift:] = True
    dy, dx = np.unravel_index(np.argmax(np.where(allowed, surface, -np.inf)), surface.shape)
    dy = dy - n if dy > n // 2 else dy
    dx = dx - n if dx > n // 2 else dx
    ya, yb = (slice(dy, n), slice(0, n - dy)) if dy >= 0 else (slice(0, n + dy), slice(-dy, n))
    xa, xb = (slice(dx, n), slice(0, n - dx)) if dx >= 0 else (slice(0, n + dx), slice(-dx, n))
    pa, pb = a[ya, xa].ravel(), b[yb, xb].ravel()
    pa = pa - pa.mean()
    pb = pb - pb.mean()
    denom = float(np.sqrt((pa @ pa) * (pb @ pb)))
    return float(pa @ pb / denom) if denom > 0 else 0.0


class SignatureCache:
    """Decodes images on demand and keeps the last ``capacity`` signatures (memory stays bounded)."""

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self._items: OrderedDict[tuple, np.ndarray | None] = OrderedDict()

    def get(self, path: str | Path, crop: tuple[int, int, int, int] | None) -> np.ndarray | None:
        key = (str(path), crop)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        try:
            signature = detail_signature(read_image(path, crop).as_uint8())
        except DecodeFailure:
            signature = None
        self._items[key] = signature
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return signature

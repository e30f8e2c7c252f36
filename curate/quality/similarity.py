"""Pixel-level confirmation of near-duplicate candidates.

A 64-bit perceptual hash cannot tell "the same radiograph, re-processed" from
"another knee of similar shape": centred knee radiographs of different people
collide within a few bits. What separates them is fine texture (trabecular bone,
noise grain), which survives re-encoding, resizing, a small shift and a change of
brightness, but differs between two knees. So each image is reduced to its
high-pass detail at 64 x 64, and a pair is compared by phase correlation: the
height of the correlation peak within a small shift is about 0.7-1 for the same
picture and below 0.3 for different knees (measured on the real knee sample).

Phase correlation costs an inverse FFT per pair, and hash candidates can run to
hundreds of thousands of pairs (synthetic knees collide far more than real ones).
So the measure pass also keeps a :func:`detail_fingerprint` per image: the signs
of its log power spectrum's fine fluctuations, which only the same picture shares.
The spectrum's magnitude ignores shifts, gains and radially symmetric filtering
(re-encoding, resizing), so a true copy stays within a few bits, while different
knees differ in about half of them; only pairs close in fingerprint are correlated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import scipy.fft
from PIL import Image
from scipy.ndimage import gaussian_filter

from curate._opencv import opencv
from curate.catalog import parse_crop
from curate.imaging import DecodeFailure, read_image

__all__ = [
    "detail_signature",
    "signatures_of_files",
    "phase_spectra",
    "phase_correlation_peak",
    "detail_fingerprint",
    "fingerprint_pixels",
    "fingerprints",
    "fingerprint_distances",
    "FINGERPRINT_BITS",
]

SIZE = 64
_MAX_SHIFT = 6  # pixels at 64: about 10% of the image
_SIGMA = 1.0
_INT8_SCALE = 32.0  # z-scored detail within +-4 SD fits int8


def detail_signature(pixels8: np.ndarray, size: int = SIZE) -> np.ndarray:
    """High-pass detail of the image at ``size`` x ``size``, z-scored, as int8 (4 KB)."""
    small = np.asarray(Image.fromarray(pixels8).resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    detail = small - gaussian_filter(small, _SIGMA)
    std = float(detail.std())
    z = (detail - detail.mean()) / (std if std > 1e-6 else 1.0)
    return np.clip(np.rint(z * _INT8_SCALE), -127, 127).astype(np.int8)


def signatures_of_files(items: Sequence[tuple[str, str | None]]) -> np.ndarray:
    """Signatures of ``(path, crop)`` items, shape (n, 64, 64); an undecodable file gives zeros."""
    out = np.zeros((len(items), SIZE, SIZE), dtype=np.int8)
    for k, (path, crop) in enumerate(items):
        try:
            out[k] = detail_signature(read_image(path, parse_crop(crop) if crop else None).as_uint8())
        except DecodeFailure:
            pass  # zeros correlate with nothing
    return out


def phase_spectra(signatures: np.ndarray) -> np.ndarray:
    """Unit-magnitude ``rfft2`` of signatures (k, 64, 64) -> (k, 64, 33) complex64."""
    spectrum = scipy.fft.rfft2(signatures.astype(np.float32), axes=(-2, -1))
    return (spectrum / (np.abs(spectrum) + 1e-6)).astype(np.complex64)


def _allowed_shifts(n: int, max_shift: int) -> np.ndarray:
    allowed = np.zeros((n, n), dtype=bool)
    for rows in (slice(0, max_shift + 1), slice(n - max_shift, n)):
        for cols in (slice(0, max_shift + 1), slice(n - max_shift, n)):
            allowed[rows, cols] = True
    return allowed


_ALLOWED = _allowed_shifts(SIZE, _MAX_SHIFT)


def phase_correlation_peak(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Peak of the phase correlation of spectra ``a`` and ``b`` (k, 64, 33) within the allowed shift."""
    surface = scipy.fft.irfft2(a * np.conj(b), s=(SIZE, SIZE), axes=(-2, -1))
    return surface[:, _ALLOWED].max(axis=1).astype(np.float32)


# --- the spectral fingerprint ------------------------------------------------

_FP_SIDE = 64  # the image is box-reduced by an integer factor to at least this many pixels
_FP_BAND = (6.4, 22.4)  # radial band, in cycles per image: above the anatomy, below JPEG's losses
_FP_RINGS = 8  # the spectrum's radial trend is removed ring by ring: it differs with filtering, not identity
_FP_K = int(np.ceil(_FP_BAND[1]))
_FP_ROWS = np.r_[0:_FP_K, -_FP_K + 1 : 0]  # frequencies -22..22 vertically (rfft2 keeps 0..22 horizontally)


def _fingerprint_layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The band's frequencies (a mask over the rfft2 corner), ordered ring by ring, and where each ring starts."""
    ky = _FP_ROWS[:, None]
    kx = np.arange(_FP_K)[None, :]
    radius = np.sqrt(ky**2 + kx**2)
    band = (radius >= _FP_BAND[0]) & (radius < _FP_BAND[1]) & ~((kx == 0) & (ky < 0))  # kx = 0: one half suffices
    cells = np.flatnonzero(band)
    ring = ((radius.ravel()[cells] - _FP_BAND[0]) / (_FP_BAND[1] - _FP_BAND[0]) * _FP_RINGS).astype(np.intp)
    ring = np.minimum(ring, _FP_RINGS - 1)
    order = np.argsort(ring, kind="stable")  # rings contiguous: their means are plain row sums
    counts = np.bincount(ring, minlength=_FP_RINGS)
    return cells[order], np.repeat(np.arange(_FP_RINGS), counts), np.cumsum(counts) - counts


_FP_CELLS, _FP_RING, _FP_RING_START = _fingerprint_layout()
_FP_RING_SIZE = np.diff(np.append(_FP_RING_START, _FP_CELLS.size)).astype(np.float64)
#: Bits of a fingerprint (padded to whole 64-bit words when packed).
FINGERPRINT_BITS = int(_FP_CELLS.size)
_FP_BYTES = -(-FINGERPRINT_BITS // 64) * 8


@functools.lru_cache(maxsize=64)
def _band_dft(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The real DFT matrices of a ``height`` x ``width`` image, for the band's frequencies only.

    Returns the cosines and sines along x for 0.._FP_K-1 side by side (width, 2K),
    and the cosines over the sines along y for :data:`_FP_ROWS` (2R, height).
    """
    ang_x = 2 * np.pi * np.outer(np.arange(width), np.arange(_FP_K)) / width
    ang_y = 2 * np.pi * np.outer(_FP_ROWS, np.arange(height)) / height
    along_x = np.hstack([np.cos(ang_x), np.sin(ang_x)]).astype(np.float32)
    along_y = np.vstack([np.cos(ang_y), np.sin(ang_y)]).astype(np.float32)
    return along_x, along_y


def _band_magnitudes(stack: np.ndarray) -> np.ndarray:
    """Spectral magnitudes of a stack (m, h, w) at the band's frequencies, (m, FINGERPRINT_BITS).

    Two matrix products over the whole stack give the few hundred frequencies the
    fingerprint reads; an FFT of every frequency costs more, and much more at
    sizes with a large prime factor (74 = 2 x 37: three times a 75-point FFT).
    """
    m, height, width = stack.shape
    along_x, along_y = _band_dft(height, width)
    half = stack.astype(np.float32).reshape(m * height, width) @ along_x  # (m h, 2K): x-transform, cos | sin
    half = half.reshape(m, height, 2 * _FP_K).transpose(1, 0, 2).reshape(height, m * 2 * _FP_K)
    full = (along_y @ half).reshape(2, len(_FP_ROWS), m, 2, _FP_K)  # [y cos|sin, ky, image, x cos|sin, kx]
    # e^{-i(a+b)} = (cos a cos b - sin a sin b) - i (sin a cos b + cos a sin b)
    real = full[0, :, :, 0] - full[1, :, :, 1]
    imag = full[1, :, :, 0] + full[0, :, :, 1]
    magnitude = np.sqrt(real * real + imag * imag).transpose(1, 0, 2).reshape(m, -1)
    return magnitude[:, _FP_CELLS]


def fingerprint_pixels(pixels8: np.ndarray | Image.Image) -> np.ndarray:
    """The small 8-bit image a fingerprint is taken of: box-reduced by an integer factor.

    Frequencies are then counted in cycles per image, so a resized copy lines up
    with its original, and the reduction costs little. The few rows and columns
    beyond a whole number of boxes are left out.
    """
    pixels8 = np.asarray(pixels8)
    height, width = pixels8.shape
    factor = min(height, width) // _FP_SIDE
    if factor >= 2:
        cv2 = opencv()
        rows, cols = height // factor, width // factor
        return cv2.resize(pixels8[: rows * factor, : cols * factor], (cols, rows), interpolation=cv2.INTER_AREA)
    if min(height, width) < 2 * _FP_K:  # too small to hold the band: upsample (rare)
        return np.asarray(Image.fromarray(pixels8).resize((_FP_SIDE, _FP_SIDE), Image.Resampling.BOX))
    return pixels8


def per_shape(func: Callable[[np.ndarray], Sequence], arrays: Sequence[np.ndarray]) -> list:
    """``func`` of the stack of each shape's arrays (one result per row), back in input order: one call per shape."""
    out: list = [None] * len(arrays)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, array in enumerate(arrays):
        by_shape.setdefault(array.shape, []).append(k)
    for members in by_shape.values():
        for k, value in zip(members, func(np.stack([arrays[k] for k in members]))):
            out[k] = value
    return out


def _fingerprint_stack(stack: np.ndarray) -> list[bytes]:
    """Fingerprints of a stack (m, h, w) of :func:`fingerprint_pixels` outputs of one shape."""
    log_magnitude = np.log(_band_magnitudes(stack) + 1e-3)  # half the log power: same signs
    flat = stack.reshape(len(stack), -1)
    log_magnitude[flat.min(axis=1) == flat.max(axis=1)] = 0.0  # a constant image has no detail: rounding noise would set bits
    ring_mean = np.add.reduceat(log_magnitude, _FP_RING_START, axis=1) / _FP_RING_SIZE
    bits = np.packbits(log_magnitude > ring_mean[:, _FP_RING], axis=1)
    return [row.tobytes().ljust(_FP_BYTES, b"\0") for row in bits]


def fingerprints(pixels: Sequence[np.ndarray]) -> list[bytes]:
    """Fingerprints of :func:`fingerprint_pixels` outputs (96 bytes each).

    Images of one shape are transformed together: one call per shape, not per
    image. Each image's bits depend on its pixels only.
    """
    return per_shape(_fingerprint_stack, pixels)


def detail_fingerprint(pixels8: np.ndarray | Image.Image) -> bytes:
    """Signs of the fine fluctuations of the image's log power spectrum about its radial trend, packed."""
    return fingerprints([fingerprint_pixels(pixels8)])[0]


def fingerprint_distances(fingerprints: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Differing bits between fingerprints (rows of uint64 words) ``i`` and ``j``, pair by pair."""
    out = np.empty(len(i), dtype=np.int32)
    step = 1 << 16  # bounds the gathered words
    for lo in range(0, len(i), step):
        xor = fingerprints[i[lo : lo + step]] ^ fingerprints[j[lo : lo + step]]
        out[lo : lo + step] = np.bitwise_count(xor).sum(axis=1, dtype=np.int32)
    return out

"""Per-image measures, all derived from one decode of one read of the file.

Every measure works on the decoder's normalized pixels (float in [0, 1], bone
bright), so 8-bit, 12-bit and 16-bit images are measured on the same scale.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from curate.imaging import DecodedImage, DecodeFailure, DecodeReason, decode_image

__all__ = ["SCAN_VERSION", "MEASURE_COLUMNS", "measure_pixels", "perceptual_hash", "perceptual_hashes", "measure_file", "work_image"]

#: Bump when a measure changes: cached measures of another version are not reused.
SCAN_VERSION = 1

_BINS = 1024  # 10-bit histogram: percentiles at 0.1% of full range, enough for 16-bit data
_WORK_SIZE = 256  # sharpness, borders and hashes are measured at one size, so resolution does not matter
_HASH_SIZE = 32
_EDGE_LEVELS = 3  # a border row/column within 3 grey levels is padding, not anatomy

MEASURE_COLUMNS: tuple[str, ...] = (
    "readable",
    "error",
    "error_detail",
    "file_sha256",
    "file_bytes",
    "width",
    "height",
    "aspect_ratio",
    "bits_stored",
    "photometric_decoded",
    "color",
    "brightness_mean",
    "brightness_p01",
    "brightness_p05",
    "brightness_p50",
    "brightness_p95",
    "brightness_p99",
    "dynamic_range",
    "contrast",
    "dark_fraction",
    "saturated_fraction",
    "entropy",
    "sharpness",
    "border_fraction",
    "inversion_score",
    "pixel_hash",
    "phash",
    "phash_probes",
)


def work_image(image: DecodedImage, size: int = _WORK_SIZE) -> np.ndarray:
    """8-bit pixels shrunk so the long side is at most ``size`` (area averaging).

    Large radiographs are measured at a common scale, so sharpness does not grow
    with resolution; smaller images are used as they are (upsampling adds nothing).
    8-bit precision is plenty for sharpness, borders and hashes.
    """
    pixels = image.as_uint8()
    height, width = pixels.shape
    scale = size / max(height, width)
    if scale < 1:
        shape = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(shape, Image.Resampling.BOX))
    return pixels


def _shifted_dct_rows(shift: float, n: int = _HASH_SIZE, k: int = 8) -> np.ndarray:
    """Rows 0..k-1 of the orthonormal DCT-II of size n, sampled ``shift`` pixels off the grid.

    Applying them to an image gives the DCT coefficients of the image moved by
    ``shift`` pixels, without resampling it.
    """
    freq = np.arange(k)[:, None]
    pos = np.arange(n)[None, :] + shift
    rows = np.cos(np.pi * (2 * pos + 1) * freq / (2 * n)) * np.sqrt(2 / n)
    rows[0] /= np.sqrt(2)
    return rows


# A shift of a few pixels flips many bits of a DCT hash, so each image is also hashed
# as if moved by -0.6..+0.6 hash pixels (about +-2% of the image) on a 5x5 grid; a
# shifted copy then lands within a few bits of one of these probes.
PROBE_SHIFTS = (-0.6, -0.3, 0.0, 0.3, 0.6)
_PROBE_ROWS = np.vstack([_shifted_dct_rows(s) for s in PROBE_SHIFTS])  # (5*8, 32)
_N_PROBES = len(PROBE_SHIFTS) ** 2
_CENTRE_PROBE = _N_PROBES // 2


def perceptual_hashes(work: np.ndarray) -> np.ndarray:
    """64-bit DCT hashes of 8-bit pixels at every probe shift (25 uint64, the centre one unshifted).

    Each hash is the signs of the 8x8 lowest DCT frequencies against their median:
    insensitive to brightness, contrast, re-encoding and resizing. Different images
    of the same anatomy can collide, so a hash match is a candidate, not a verdict.
    """
    small = np.asarray(Image.fromarray(work).resize((_HASH_SIZE, _HASH_SIZE), Image.Resampling.BOX), dtype=np.float64)
    n = len(PROBE_SHIFTS)
    coeffs = (_PROBE_ROWS @ small @ _PROBE_ROWS.T).reshape(n, 8, n, 8).transpose(0, 2, 1, 3).reshape(n * n, 64)
    ac = np.sort(coeffs[:, 1:], axis=1)  # the DC term would dominate the median
    median = ac[:, 31]  # the middle of 63
    bits = coeffs > median[:, None]
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def perceptual_hash(work: np.ndarray) -> np.uint64:
    """The unshifted 64-bit DCT hash of 8-bit pixels (see :func:`perceptual_hashes`)."""
    return perceptual_hashes(work)[_CENTRE_PROBE]


def _std(values: np.ndarray) -> float:
    flat = values.ravel().astype(np.float32)
    mean = flat.mean(dtype=np.float64)
    return float(np.sqrt(max(float(flat @ flat) / flat.size - mean * mean, 0.0)))


_QUANTILES = np.array([0.01, 0.05, 0.50, 0.95, 0.99])


def _histogram_stats(image: DecodedImage) -> dict[str, float]:
    if image.facts.bits_stored <= 8:  # exact on the file's own 256 levels; Pillow counts fastest
        bins = 256
        hist = np.asarray(Image.fromarray(image.as_uint8()).histogram(), dtype=np.float64)
    else:
        bins = _BINS
        levels = np.clip(np.rint(image.pixels.ravel() * (bins - 1)), 0, bins - 1).astype(np.intp)
        hist = np.bincount(levels, minlength=bins).astype(np.float64)
    prob = hist / hist.sum()
    centers = np.arange(bins) / (bins - 1)
    mean = float(prob @ centers)
    std = float(np.sqrt(max(prob @ (centers * centers) - mean * mean, 0.0)))
    cdf = np.cumsum(prob)
    p01, p05, p50, p95, p99 = (np.searchsorted(cdf, _QUANTILES) / (bins - 1)).tolist()
    coarse = prob.reshape(256, -1).sum(axis=1)  # 8-bit entropy: comparable with other tools
    coarse = coarse[coarse > 0]
    return {
        "brightness_mean": mean,
        "brightness_p01": p01,
        "brightness_p05": p05,
        "brightness_p50": p50,
        "brightness_p95": p95,
        "brightness_p99": p99,
        "dynamic_range": p99 - p01,
        "contrast": std,
        "dark_fraction": float(cdf[int(0.05 * (bins - 1))]),
        "saturated_fraction": float(1.0 - cdf[int(0.98 * (bins - 1)) - 1]),
        "entropy": float(-(coarse @ np.log2(coarse))),
    }


def _sharpness(work: np.ndarray) -> float:
    """Laplacian energy relative to contrast, at a fixed scale: low means blurred."""
    w = work.astype(np.int16)
    lap = w[1:-1, 1:-1] * 4
    lap -= w[:-2, 1:-1]
    lap -= w[2:, 1:-1]
    lap -= w[1:-1, :-2]
    lap -= w[1:-1, 2:]
    return _std(lap) / (_std(w) + 0.25)  # 0.25 of a grey level keeps blank images finite


def _border_fraction(work: np.ndarray) -> float:
    """Share of the image taken by flat rows/columns at its edges (padding, collimation)."""
    row_flat = work.max(axis=1) - work.min(axis=1) <= _EDGE_LEVELS
    col_flat = work.max(axis=0) - work.min(axis=0) <= _EDGE_LEVELS
    if row_flat.all() or col_flat.all():
        return 1.0
    top, bottom = int(np.argmin(row_flat)), int(np.argmin(row_flat[::-1]))
    left, right = int(np.argmin(col_flat)), int(np.argmin(col_flat[::-1]))
    inner = (len(row_flat) - top - bottom) * (len(col_flat) - left - right)
    return float(1.0 - inner / work.size)


def _inversion_score(work: np.ndarray) -> float:
    """Border ring minus centre brightness (in [−1, 1]): a radiograph has dark air outside, bright body inside."""
    h, w = work.shape
    rh, rw = max(h // 10, 1), max(w // 10, 1)
    total = float(work.sum(dtype=np.int64))
    inner = float(work[rh:-rh, rw:-rw].sum(dtype=np.int64))
    ring = (total - inner) / max(work.size - (h - 2 * rh) * (w - 2 * rw), 1)
    centre = float(work[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean())
    return (ring - centre) / 255.0


def measure_pixels(image: DecodedImage) -> dict[str, object]:
    """All pixel measures of one decoded image (see :data:`MEASURE_COLUMNS`)."""
    height, width = image.shape
    work = work_image(image)
    pixels8 = image.as_uint8()
    hashes = perceptual_hashes(work)
    return {
        "width": width,
        "height": height,
        "aspect_ratio": width / height,
        "bits_stored": image.facts.bits_stored,
        "photometric_decoded": image.facts.photometric,
        "color": image.facts.color,
        **_histogram_stats(image),
        "sharpness": _sharpness(work),
        "border_fraction": _border_fraction(work),
        "inversion_score": _inversion_score(work),
        "pixel_hash": hashlib.sha256(np.array(pixels8.shape, dtype=np.int64).tobytes() + pixels8.tobytes()).hexdigest()[
            :32
        ],
        "phash": hashes[_CENTRE_PROBE],
        "phash_probes": hashes.astype("<u8").tobytes(),
    }


def measure_file(path: str | os.PathLike, crop: tuple[int, int, int, int] | None = None) -> dict[str, object]:
    """Read a file once, hash its bytes, decode it and measure it.

    Never raises for a bad file: ``readable`` is False and ``error`` names the
    :class:`~curate.imaging.DecodeReason`.
    """
    row: dict[str, object] = {"readable": False, "error": None, "error_detail": None}
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        row.update(error=DecodeReason.MISSING_FILE.value, error_detail="no such file")
        return row
    except OSError as exc:
        row.update(error=DecodeReason.UNREADABLE.value, error_detail=str(exc))
        return row
    row["file_sha256"] = hashlib.sha256(data).hexdigest()
    row["file_bytes"] = len(data)
    try:
        image = decode_image(data, str(path), crop)
    except DecodeFailure as failure:
        row.update(error=failure.reason.value, error_detail=failure.detail)
        return row
    row["readable"] = True
    row.update(measure_pixels(image))
    return row

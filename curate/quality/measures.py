"""Per-image measures, all derived from one decode of one read of the file.

Every measure works on the decoder's normalized pixels (float in [0, 1], bone
bright), so 8-bit, 12-bit and 16-bit images are measured on the same scale.

The scan measures a chunk of files at a time (:func:`measure_files`): what needs
the full-size pixels is measured image by image, while the histogram statistics,
hashes, fingerprints and inversion scores, which work on small arrays, run once
per chunk, so numpy's per-call cost is paid per chunk rather than per image. Each
row depends on its own file only.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence

import numpy as np
import xxhash

from curate._opencv import one_opencv_thread, opencv
from curate.imaging import DecodedImage, DecodeFailure, DecodeReason, decode_image, regular_file_failure
from curate.quality.pixel_pass import PixelPass, pixel_pass
from curate.quality.similarity import fingerprint_pixels, fingerprints, per_shape

__all__ = [
    "SCAN_VERSION",
    "MEASURE_COLUMNS",
    "measure_pixels",
    "perceptual_hash",
    "perceptual_hashes",
    "measure_file",
    "measure_files",
    "work_image",
    "compile_kernels",
]

#: Bump when a measure changes: cached measures of another version are not reused.
#: 3: the inversion score is taken from the fingerprint's reduced image.
#: 4: large images and hash pixels are shrunk by OpenCV's area resize, not Pillow's box filter.
#: 5: fingerprints (and inversion scores) from exact means of whole boxes, band frequencies only.
#: 6: the pixel hash is XXH3-128, not truncated SHA-256.
#: 7: sharpness from exact integer Laplacian sums (it was summed in float32).
SCAN_VERSION = 8

_BINS = 1024  # 10-bit histogram: percentiles at 0.1% of full range, enough for 16-bit data
_WORK_SIZE = 256  # sharpness, borders and hashes are measured at one size, so resolution does not matter
_HASH_SIZE = 32
_EDGE_LEVELS = 3  # a border row/column within 3 grey levels is padding, not anatomy

# The brightness measures, all read off one histogram.
_HISTOGRAM_COLUMNS = (
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
)

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
    *_HISTOGRAM_COLUMNS,
    "sharpness",
    "border_fraction",
    "inversion_score",
    "text_marks",
    "pixel_hash",
    "phash",
    "phash_probes",
    "detail_fingerprint",
)


def work_image(image: DecodedImage, size: int = _WORK_SIZE) -> np.ndarray:
    """8-bit pixels shrunk so the long side is at most ``size`` (OpenCV's area averaging).

    Large radiographs are measured at a common scale, so sharpness does not grow
    with resolution; smaller images are used as they are (upsampling adds nothing).
    8-bit precision is plenty for sharpness, borders and hashes.
    """
    pixels = image.as_uint8()
    height, width = pixels.shape
    scale = size / max(height, width)
    if scale < 1:
        shape = (max(1, round(width * scale)), max(1, round(height * scale)))
        cv2 = opencv()
        pixels = cv2.resize(pixels, shape, interpolation=cv2.INTER_AREA)
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
    return _hashes(_hash_pixels(work)[None])[0]


def _hash_pixels(work: np.ndarray) -> np.ndarray:
    """The 32 x 32 area-averaged 8-bit image the hashes are taken of (each pixel the rounded mean of its box).

    OpenCV's area resize computes the exact box means several times faster than
    Pillow's box filter, whose two passes round in between. (An image smaller than
    32 px is enlarged instead, by OpenCV's interpolation.)
    """
    cv2 = opencv()
    return cv2.resize(np.asarray(work), (_HASH_SIZE, _HASH_SIZE), interpolation=cv2.INTER_AREA)


def _hashes(smalls: np.ndarray) -> np.ndarray:
    """The probe hashes (m, 25) of a stack of :func:`_hash_pixels` outputs (m, 32, 32), in a few calls."""
    n = len(PROBE_SHIFTS)
    coeffs = _PROBE_ROWS @ smalls.astype(np.float64) @ _PROBE_ROWS.T  # (m, 5*8, 5*8)
    coeffs = coeffs.reshape(-1, n, 8, n, 8).transpose(0, 1, 3, 2, 4).reshape(-1, n * n, 64)
    median = np.partition(coeffs[..., 1:], 31, axis=-1)[..., 31]  # the middle of the 63 AC terms (DC would dominate)
    bits = coeffs > median[..., None]
    return np.packbits(bits, axis=-1).view(">u8")[..., 0].astype(np.uint64)


def perceptual_hash(work: np.ndarray) -> np.uint64:
    """The unshifted 64-bit DCT hash of 8-bit pixels (see :func:`perceptual_hashes`)."""
    return perceptual_hashes(work)[_CENTRE_PROBE]


_QUANTILES = np.array([0.01, 0.05, 0.50, 0.95, 0.99])
_CENTERS = {bins: np.arange(bins) / (bins - 1) for bins in (256, _BINS)}


def _gray_histogram(pixels8: np.ndarray) -> np.ndarray:
    """Counts of the 256 grey levels of 8-bit pixels (OpenCV counts several times faster than numpy)."""
    if pixels8.size > 2**24:  # OpenCV counts in float32, exact only up to 2**24
        return np.bincount(pixels8.ravel(), minlength=256).astype(np.float64)
    cv2 = opencv()
    return cv2.calcHist([pixels8], [0], None, [256], [0, 256]).ravel().astype(np.float64)


def _histogram(image: DecodedImage) -> np.ndarray:
    """Counts of the file's own 256 levels for 8-bit files, else of 1024 levels of the normalized pixels."""
    if image.facts.bits_stored <= 8:  # exact on the file's own levels
        return _gray_histogram(image.as_uint8())
    levels = np.clip(np.rint(image.pixels.ravel() * (_BINS - 1)), 0, _BINS - 1).astype(np.intp)
    return np.bincount(levels, minlength=_BINS).astype(np.float64)


def _histogram_stats(counts: np.ndarray) -> list[dict[str, float]]:
    """Brightness measures of a stack of histograms with the same bin count, a row each."""
    bins = counts.shape[1]
    prob = counts / counts.sum(axis=1, keepdims=True)
    centers = _CENTERS[bins]
    mean = (prob * centers).sum(axis=1)
    std = np.sqrt(np.maximum((prob * (centers * centers)).sum(axis=1) - mean * mean, 0.0))
    cdf = np.cumsum(prob, axis=1)
    # the first level whose cumulative share reaches q = how many levels stay below it
    # one comparison per quantile: several times faster than one (m, bins, 5) comparison
    p01, p05, p50, p95, p99 = np.stack([(cdf < q).sum(axis=1) for q in _QUANTILES]) / (bins - 1)
    coarse = prob.reshape(len(counts), 256, -1).sum(axis=2)  # 8-bit entropy: comparable with other tools
    entropy = -(coarse * np.log2(np.where(coarse > 0, coarse, 1.0))).sum(axis=1)
    dark = cdf[:, int(0.05 * (bins - 1))]
    saturated = 1.0 - cdf[:, int(0.98 * (bins - 1)) - 1]
    table = np.column_stack([mean, p01, p05, p50, p95, p99, p99 - p01, std, dark, saturated, entropy])
    return [dict(zip(_HISTOGRAM_COLUMNS, values)) for values in table.tolist()]


def _sharpness(scan: PixelPass) -> float:
    """Standard deviation of the interior Laplacian relative to contrast, at a fixed scale: low means blurred."""
    if scan.interior == 0:
        return float("nan")
    n = scan.interior
    laplacian = math.sqrt(max(scan.laplacian_squares / n - (scan.laplacian_sum / n) ** 2, 0.0))
    pixels = scan.counts.sum()
    spread = math.sqrt(max(scan.level_squares / pixels - (scan.level_sum / pixels) ** 2, 0.0))
    return float(laplacian / (spread + 0.25))  # 0.25 of a grey level keeps blank images finite


def _border_fraction(work: np.ndarray, edge_spreads: np.ndarray) -> float:
    """Share of the image taken by flat rows/columns at its edges (padding, collimation)."""
    if not (edge_spreads <= _EDGE_LEVELS).any():
        return 0.0  # most images; skips the full pass below
    row_flat = work.max(axis=1) - work.min(axis=1) <= _EDGE_LEVELS
    col_flat = work.max(axis=0) - work.min(axis=0) <= _EDGE_LEVELS
    if row_flat.all() or col_flat.all():
        return 1.0
    top, bottom = int(np.argmin(row_flat)), int(np.argmin(row_flat[::-1]))
    left, right = int(np.argmin(col_flat)), int(np.argmin(col_flat[::-1]))
    inner = (len(row_flat) - top - bottom) * (len(col_flat) - left - right)
    return float(1.0 - inner / work.size)


def _inversion_scores(smalls: np.ndarray) -> np.ndarray:
    """Border ring minus centre brightness (in [−1, 1]) of a stack (m, h, w) of 8-bit images, h and w >= 3.

    A radiograph has dark air outside, bright body inside. The scan passes the
    fingerprint's reduced images: the score is a difference of two large means, the
    same at a third of the resolution, and one stack costs a few array calls.
    """
    _, h, w = smalls.shape
    rh, rw = max(h // 10, 1), max(w // 10, 1)
    total = smalls.sum(axis=(1, 2), dtype=np.int64)
    inner = smalls[:, rh : h - rh, rw : w - rw].sum(axis=(1, 2), dtype=np.int64)
    ring = (total - inner) / (h * w - (h - 2 * rh) * (w - 2 * rw))
    centre_box = smalls[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    centre = centre_box.sum(axis=(1, 2), dtype=np.int64) / (centre_box.shape[1] * centre_box.shape[2])
    return (ring - centre) / 255.0


def _pixel_hash(pixels8: np.ndarray) -> str:
    """128-bit hash of the shape and 8-bit pixels, as 32 hex digits: equal pixels, equal hash.

    XXH3 rather than SHA-256: it only has to tell accidental differences apart (the
    file's own SHA-256 is the content address), and it hashes a radiograph 30 times
    faster, which is a few percent of the whole scan.
    """
    digest = xxhash.xxh3_128(np.array(pixels8.shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(pixels8))  # hashed in place: no copy of the pixels
    return digest.hexdigest()


def _measure_image(image: DecodedImage) -> tuple[dict[str, object], np.ndarray, np.ndarray, np.ndarray]:
    """The measures taken image by image, and what the batched ones need.

    Returns the row so far, the brightness histogram, the hash pixels and the
    fingerprint pixels; :func:`_finish` turns a chunk of these into full rows.
    Only sharpness, borders and the pixel hash read the full-size pixels.
    """
    height, width = image.shape
    pixels8 = image.as_uint8()
    work = work_image(image)
    scan = pixel_pass(work)
    # an 8-bit file measured at full size has its histogram counted already
    hist = scan.counts if work is pixels8 and image.facts.bits_stored <= 8 else _histogram(image)
    row = {
        "width": width,
        "height": height,
        "aspect_ratio": width / height,
        "bits_stored": image.facts.bits_stored,
        "photometric_decoded": image.facts.photometric,
        "color": image.facts.color,
        "sharpness": _sharpness(scan),
        "border_fraction": _border_fraction(work, scan.edge_spreads),
        "pixel_hash": _pixel_hash(pixels8),
        "text_marks": _text_marks(image, pixels8),
    }
    return row, hist, _hash_pixels(work), fingerprint_pixels(work)


def _text_marks(image: DecodedImage, pixels8: np.ndarray) -> int | None:
    """Marks of burned-in text (:mod:`curate.quality.text_marks`) of DICOMs and images larger than the work size.

    Crops at or below the work size (public datasets' 224-px knees) are not searched
    (None): the search costs about 0.6 ms there, more than the rest of the measures,
    and such a crop leaves no margin for text.
    """
    if image.facts.format != "DICOM" and max(pixels8.shape) <= _WORK_SIZE:
        return None
    from curate.quality.text_marks import text_marks

    return text_marks(pixels8)


def _finish(parts: Sequence[tuple[dict[str, object], np.ndarray, np.ndarray, np.ndarray]]) -> list[dict[str, object]]:
    """Complete rows with the measures computed a chunk at a time: per-call costs are paid once per chunk."""
    if not parts:
        return []
    rows, hists, smalls, prints = zip(*parts)
    hashes = _hashes(np.stack(smalls))
    inversion = per_shape(lambda stack: _inversion_scores(stack).tolist(), prints)
    for row, stats, probes, fingerprint, score in zip(
        rows, per_shape(_histogram_stats, hists), hashes, fingerprints(prints), inversion
    ):
        row.update(stats)
        row["inversion_score"] = score
        row["phash"] = probes[_CENTRE_PROBE]
        row["phash_probes"] = probes.astype("<u8").tobytes()
        row["detail_fingerprint"] = fingerprint
    return list(rows)


def compile_kernels() -> None:
    """Compile the PNG unfilter and the pixel pass now, or load them from numba's cache (about 0.2 s).

    A scan calls this before its worker processes fork, so they inherit the
    compiled code instead of each loading it again in its first chunk.
    """
    from curate._png import compile_unfilter
    from curate.quality.pixel_pass import compile_pixel_pass

    compile_unfilter()
    compile_pixel_pass()


def measure_pixels(image: DecodedImage) -> dict[str, object]:
    """All pixel measures of one decoded image (see :data:`MEASURE_COLUMNS`)."""
    return _finish([_measure_image(image)])[0]


def _read_and_decode(path: str | os.PathLike, crop: tuple[int, int, int, int] | None) -> tuple[dict, DecodedImage | None]:
    """The file's row so far and its decoded image (None when it cannot be read or decoded)."""
    row: dict[str, object] = {"readable": False, "error": None, "error_detail": None}
    # Checked before open(): opening a named pipe would wait for a writer forever.
    failure = regular_file_failure(path)
    if failure is not None:
        row.update(error=failure.reason.value, error_detail=failure.detail)
        return row, None
    try:
        with open(path, "rb") as fh:  # not Path.read_bytes: pathlib's parsing costs as much as the read
            data = fh.read()
    except FileNotFoundError:
        row.update(error=DecodeReason.MISSING_FILE.value, error_detail="no such file")
        return row, None
    except OSError as exc:
        row.update(error=DecodeReason.UNREADABLE.value, error_detail=str(exc))
        return row, None
    row["file_sha256"] = hashlib.sha256(data).hexdigest()
    row["file_bytes"] = len(data)
    try:
        image = decode_image(data, str(path), crop)
    except DecodeFailure as failure:
        row.update(error=failure.reason.value, error_detail=failure.detail)
        return row, None
    row["readable"] = True
    return row, image


def measure_files(items: Sequence[tuple[str | os.PathLike, tuple[int, int, int, int] | None]]) -> list[dict[str, object]]:
    """:func:`measure_file` of every ``(path, crop)``, in order; the batched measures run once for all."""
    rows, parts = [], []
    with one_opencv_thread():
        for path, crop in items:
            row, image = _read_and_decode(path, crop)
            if image is not None:
                head, *rest = _measure_image(image)
                row.update(head)
                parts.append((row, *rest))
                del image  # one decoded image alive at a time
            rows.append(row)
    _finish(parts)
    return rows


def measure_file(path: str | os.PathLike, crop: tuple[int, int, int, int] | None = None) -> dict[str, object]:
    """Read a file once, hash its bytes, decode it and measure it.

    Never raises for a bad file: ``readable`` is False and ``error`` names the
    :class:`~curate.imaging.DecodeReason`.
    """
    return measure_files([(path, crop)])[0]

"""The one image policy for everything a person or a trainer sees.

Trainers open images with Pillow's ``Image.open(path).convert("RGB")`` (LLaVA's
loader, torchvision's ``pil_loader``, Hugging Face image processors), and the
FiftyOne App shows them in a browser. Both show a plain 8-bit grayscale or RGB
file as it is, and get everything else wrong: a 16-bit PNG holding 12-bit values
comes out white, a DICOM cannot be opened, MONOCHROME1 is shown inverted, a crop
is not applied. Exports, App renderings and :class:`curate.torch.ManifestDataset`
therefore ask this module two things:

- :func:`shown_as_is`: may the file be linked unchanged?
- :func:`render`: the pixels to write otherwise, decoded by
  :func:`curate.imaging.read_image` (the scan's normalization: Modality LUT,
  DICOM window, MONOCHROME1 inverted, 12-in-16-bit scaled by the bits used),
  then the trainer-side :class:`Preprocessing` (window, resize, CLAHE, bit depth).

A :class:`Preprocessing` is recorded with every export (``as_dict`` and its
``pixels_id``), so two experiments can show they fed the same pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from curate.errors import CurateError

__all__ = [
    "FITS",
    "WINDOWS",
    "IMAGE_FORMATS",
    "Preprocessing",
    "shown_as_is",
    "why_converted",
    "render",
    "encode",
]

FITS = ("pad", "crop", "stretch")
WINDOWS = ("decoder", "percentile")
IMAGE_FORMATS = ("png", "jpeg")
#: Formats and modes a plain Pillow ``convert("RGB")`` shows as the image: 8-bit gray or RGB, one frame.
_PLAIN_FORMATS = frozenset({"PNG", "JPEG", "BMP", "WEBP", "TIFF"})
_PLAIN_MODES = frozenset({"L", "RGB"})
_EXTENSIONS = {"png": ".png", "jpeg": ".jpg"}


@dataclass(frozen=True)
class Preprocessing:
    """What an export does to pixels after curate's decoder (steps in the order of :meth:`as_dict`).

    Parameters
    ----------
    size : int, optional
        Side of the square output in pixels (None: keep each image's size).
    fit : {"pad", "crop", "stretch"}
        How a non-square image becomes ``size`` x ``size``: scale the long side to
        ``size`` and pad with black (``pad``, the aspect ratio kept, nothing lost),
        scale the short side and cut the centre (``crop``), or scale each side
        (``stretch``).
    bit_depth : {8, 16}
        Bits per pixel written. 16-bit files are for readers that keep them
        (OpenCV's ``IMREAD_UNCHANGED``, curate); Pillow's ``convert("RGB")`` clips them.
    window : {"decoder", "percentile"}
        ``decoder``: the file's own DICOM window (VOI LUT or Window Center/Width)
        when it has one, else its stored bit range. ``percentile``: stretch the
        ``percentiles`` (low, high) of each image's grey levels to black and white.
    percentiles : (float, float)
        Used by the ``percentile`` window.
    clahe : bool
        Contrast-limited adaptive histogram equalization (OpenCV) on the resized image.
    clahe_clip, clahe_tiles : float, int
        CLAHE's clip limit and its tile grid (``tiles`` x ``tiles``).
    image_format : {"png", "jpeg"}
        File format written (JPEG at quality 95, 8-bit only).
    """

    size: int | None = None
    fit: str = "pad"
    bit_depth: int = 8
    window: str = "decoder"
    percentiles: tuple[float, float] = (0.5, 99.5)
    clahe: bool = False
    clahe_clip: float = 2.0
    clahe_tiles: int = 8
    image_format: str = "png"

    def __post_init__(self):
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        if self.size is not None and (not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool) or not 1 <= self.size <= 16384):
            raise CurateError(f"size {self.size!r}: give a whole number of pixels from 1 to 16384")
        if self.fit not in FITS:
            raise CurateError(f"fit {self.fit!r}: use one of {', '.join(FITS)}")
        if self.bit_depth not in (8, 16):
            raise CurateError(f"bit depth {self.bit_depth!r}: use 8 or 16")
        if self.window not in WINDOWS:
            raise CurateError(f"window {self.window!r}: use one of {', '.join(WINDOWS)}")
        low, high = self.percentiles if len(self.percentiles) == 2 else (None, None)
        if low is None or not 0 <= low < high <= 100:
            raise CurateError(f"percentiles {self.percentiles!r}: give low,high with 0 <= low < high <= 100")
        if not self.clahe_clip > 0 or not 1 <= int(self.clahe_tiles) <= 64:
            raise CurateError("CLAHE needs a clip limit above 0 and 1 to 64 tiles")
        if self.image_format not in IMAGE_FORMATS:
            raise CurateError(f"image format {self.image_format!r}: use one of {', '.join(IMAGE_FORMATS)}")
        if self.image_format == "jpeg" and self.bit_depth != 8:
            raise CurateError("JPEG files are 8-bit: use --image-format png for --bit-depth 16")

    @classmethod
    def from_dict(cls, options: dict | None) -> "Preprocessing":
        """Build from recipe keys or CLI options; unknown keys are one line naming them."""
        options = {k: v for k, v in (options or {}).items() if v is not None}
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise CurateError(f"unknown preprocessing key(s) {', '.join(unknown)}: use {', '.join(cls.__dataclass_fields__)}")
        if "percentiles" in options and isinstance(options["percentiles"], str):
            options["percentiles"] = _parse_pair(options["percentiles"])
        return cls(**options)

    @property
    def changes_pixels(self) -> bool:
        """False for the default: files a reader shows as they are may then stay links."""
        return self != Preprocessing()

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.image_format]

    def as_dict(self) -> dict:
        """The parameters, with the order of the steps, as recorded in exports and cards."""
        record = asdict(self)
        record["percentiles"] = list(self.percentiles)
        if not self.clahe:
            record.pop("clahe_clip"), record.pop("clahe_tiles")
        if self.window != "percentile":
            record.pop("percentiles")
        record["steps"] = ["decode and crop (curate.read_image)", "window", "quantize", "resize", "clahe", "encode"]
        return record

    @property
    def pixels_id(self) -> str:
        """A short hash of :meth:`as_dict`: equal ids, equal pixels from equal files."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in str(text).split(","))
    except ValueError:
        raise CurateError(f"percentiles {text!r}: give two numbers, low,high (e.g. 0.5,99.5)") from None
    return low, high


def why_converted(path: str | os.PathLike, crop: object = None) -> str | None:
    """Why a plain Pillow ``convert("RGB")`` would not show the file as curate decodes it.

    None for a single-frame 8-bit grayscale or RGB PNG, JPEG, BMP, WebP or TIFF
    without a crop: such a file may be linked as it is. Otherwise a short reason
    (``"crop"``, ``"DICOM"``, ``"mode I;16"``, ``"3 frames"``, ...). Only the
    header is read.
    """
    if _has_crop(crop):
        return "crop"
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
        if head[128:132] == b"DICM":
            return "DICOM"
        with Image.open(path) as img:
            if img.format not in _PLAIN_FORMATS:
                return f"format {img.format}"
            if img.mode not in _PLAIN_MODES:
                return f"mode {img.mode}"
            frames = getattr(img, "n_frames", 1)
            return f"{frames} frames" if frames != 1 else None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "not a file Pillow opens (DICOM or damaged)"


def shown_as_is(path: str | os.PathLike, crop: object = None) -> bool:
    """True when a plain Pillow ``convert("RGB")`` shows the file as curate decodes it (see :func:`why_converted`)."""
    return why_converted(path, crop) is None


def _has_crop(crop: object) -> bool:
    if crop is None:
        return False
    try:
        import pandas as pd

        if pd.isna(crop):
            return False
    except (TypeError, ValueError):
        pass
    return str(crop).strip() != ""


def render(
    path: str | os.PathLike, crop: object = None, preprocessing: Preprocessing | None = None
) -> np.ndarray:
    """Decode ``path`` (its ``crop`` box, ``"x0,y0,x1,y1"``) and apply ``preprocessing``.

    Returns
    -------
    ndarray
        2-D ``uint8`` (or ``uint16`` for ``bit_depth=16``), bone bright.

    Raises
    ------
    curate.imaging.DecodeFailure
        The file cannot be decoded (the reason is typed).
    """
    from curate.catalog import parse_crop
    from curate.imaging import read_image

    pre = preprocessing or Preprocessing()
    box = parse_crop(str(crop).strip()) if _has_crop(crop) else None
    image = read_image(Path(path), box)
    if not pre.changes_pixels:
        return image.as_uint8()
    return apply_preprocessing(image.pixels if (pre.window != "decoder" or pre.bit_depth != 8) else image.as_uint8(), pre)


def apply_preprocessing(pixels: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Window, resize, CLAHE and quantize decoded pixels (float in [0, 1] or uint8)."""
    from curate._opencv import opencv

    cv2 = opencv()
    if pre.window == "percentile":
        values = pixels.astype(np.float32, copy=False)
        low, high = np.percentile(values, pre.percentiles)
        scale = 1.0 / (high - low) if high > low else 0.0
        pixels = np.clip((values - low) * np.float32(scale), 0.0, 1.0)
    if pre.bit_depth == 16 and pixels.dtype != np.uint16:
        pixels = _quantize(pixels, 16)
    elif pre.bit_depth == 8 and pixels.dtype != np.uint8:
        pixels = _quantize(pixels, 8)
    if pre.size is not None:
        pixels = _resize(cv2, pixels, pre.size, pre.fit)
    if pre.clahe:
        tiles = int(pre.clahe_tiles)
        pixels = cv2.createCLAHE(clipLimit=float(pre.clahe_clip), tileGridSize=(tiles, tiles)).apply(pixels)
    return np.ascontiguousarray(pixels)


def _quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    if pixels.dtype == np.uint8:  # 8 -> 16 bits: 0..255 spans 0..65535
        return pixels.astype(np.uint16) * np.uint16(257)
    top = float(2**bits - 1)
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.clip(np.rint(pixels * top), 0, top).astype(dtype)


def _resize(cv2, pixels: np.ndarray, size: int, fit: str) -> np.ndarray:
    height, width = pixels.shape
    if fit == "stretch":
        return _scaled(cv2, pixels, size, size)
    scale = size / (max(height, width) if fit == "pad" else min(height, width))
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    scaled = _scaled(cv2, pixels, new_w, new_h)
    if fit == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return scaled[top : top + size, left : left + size]
    out = np.zeros((size, size), dtype=pixels.dtype)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = scaled
    return out


def _scaled(cv2, pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    if (height, width) == pixels.shape:
        return pixels
    shrinking = width * height < pixels.shape[0] * pixels.shape[1]
    # area averaging when shrinking (no aliasing of trabecular texture), bicubic when enlarging
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def encode(pixels: np.ndarray, image_format: str = "png") -> bytes:
    """The bytes of a PNG (8- or 16-bit grayscale) or JPEG file, with no text chunks or metadata."""
    from curate._opencv import opencv

    cv2 = opencv()
    if image_format != "jpeg":
        from curate._png_write import encode_gray_png

        return encode_gray_png(pixels)
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:  # pragma: no cover - OpenCV encodes any 2-D uint8/uint16 array
        raise CurateError(f"could not encode a {pixels.shape} {pixels.dtype} image as {image_format}")
    return data.tobytes()

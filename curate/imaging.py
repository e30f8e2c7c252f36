"""Read any supported image file into one normalized grayscale array.

PNG, JPEG, TIFF, BMP (via Pillow) and DICOM (via pydicom, compressed transfer
syntaxes through the pylibjpeg plugins) all come out the same way: a float32 array
in [0, 1] where bone is bright, plus the facts about the file that later stages
check (bit depth, photometric interpretation, whether a colour image is really gray).

A file that cannot be decoded gives a :class:`DecodeFailure` with a typed reason,
never an unhandled exception.
"""

from __future__ import annotations

import enum
import errno
import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from curate._opencv import opencv

__all__ = [
    "DecodeReason",
    "DecodeFailure",
    "ImageFacts",
    "DecodedImage",
    "read_image",
    "try_read_image",
    "decode_image",
    "read_dicom_header",
    "is_dicom",
    "regular_file_failure",
    "to_uint8",
]

# A colour image whose channels differ by at most this many grey levels (of 255) is
# gray saved as RGB; JPEG chroma noise alone reaches 1-2 levels.
_GRAY_TOLERANCE = 3 / 255
_DICOM_EXTENSIONS = {".dcm", ".dicom"}


class DecodeReason(str, enum.Enum):
    """Why a file could not be decoded."""

    MISSING_FILE = "missing_file"
    ZERO_BYTES = "zero_bytes"
    NOT_AN_IMAGE = "not_an_image"
    TRUNCATED = "truncated"
    CORRUPT_PIXEL_DATA = "corrupt_pixel_data"
    UNSUPPORTED_TRANSFER_SYNTAX = "unsupported_transfer_syntax"
    MISSING_TRANSFER_SYNTAX = "missing_transfer_syntax"
    MISSING_PIXEL_DATA = "missing_pixel_data"
    BAD_CROP = "crop_outside_image"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    BROKEN_LINK = "broken_link"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class DecodeFailure(Exception):
    """A file that could not be decoded, and why."""

    path: str
    reason: DecodeReason
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason.value} ({self.detail})"


@dataclass
class ImageFacts:
    """What the decoder learned about a file besides its pixels."""

    format: str
    width: int
    height: int
    bits_stored: int
    photometric: str = "MONOCHROME2"
    color: str = "gray"  # "gray", "gray-in-rgb" (an RGB/RGBA file that is gray) or "color"
    n_frames: int = 1
    notes: list[str] = field(default_factory=list)


class DecodedImage:
    """Normalized pixels (float32, 2-D, in [0, 1], bone bright) and the file's facts.

    An 8-bit grayscale file keeps its 8-bit pixels too (:meth:`as_uint8`), so
    measures that work on 8-bit data skip a float round trip; ``pixels`` is then
    computed on first use.
    """

    def __init__(self, pixels: np.ndarray | None, facts: ImageFacts, *, uint8: np.ndarray | None = None):
        if pixels is None and uint8 is None:
            raise ValueError("DecodedImage needs pixels or uint8")
        self._pixels = pixels
        self._uint8 = uint8
        self.facts = facts

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = self._uint8.astype(np.float32) * np.float32(1 / 255)
        return self._pixels

    @property
    def shape(self) -> tuple[int, int]:
        return (self._uint8 if self._uint8 is not None else self._pixels).shape

    def as_uint8(self) -> np.ndarray:
        """The pixels as 8-bit values (exact for 8-bit files, rounded otherwise)."""
        if self._uint8 is None:
            self._uint8 = to_uint8(self._pixels)
        return self._uint8

    def crop(self, box: tuple[int, int, int, int]) -> None:
        """Keep only the pixel box ``(x0, y0, x1, y1)``, in place."""
        x0, y0, x1, y1 = box
        if self._pixels is not None:
            self._pixels = np.ascontiguousarray(self._pixels[y0:y1, x0:x1])
        if self._uint8 is not None:
            self._uint8 = np.ascontiguousarray(self._uint8[y0:y1, x0:x1])


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Convert normalized [0, 1] pixels to 8-bit, rounding to nearest."""
    return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)


# What each kind of non-file is, in the words a user would look for.
_NOT_FILES = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def regular_file_failure(path: str | os.PathLike) -> DecodeFailure | None:
    """Why ``path`` is not a regular file (or a link to one), found without opening it.

    Opening a named pipe waits for a writer that never comes, a socket cannot be
    opened at all and a device may never end: such paths are named, never read.

    Parameters
    ----------
    path : path
        The file to check; symbolic links are followed.

    Returns
    -------
    DecodeFailure or None
        None for a regular file. Otherwise the failure to report:
        ``NOT_A_REGULAR_FILE`` (pipe, socket, device, folder), ``BROKEN_LINK``
        (a link to nothing, or a loop of links), ``MISSING_FILE`` or ``UNREADABLE``.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode  # os.stat, not Path.stat: a scan checks every file
    except OSError as exc:
        return _stat_failure(name, exc)
    if stat.S_ISREG(mode):
        return None
    return DecodeFailure(name, DecodeReason.NOT_A_REGULAR_FILE, _NOT_FILES.get(stat.S_IFMT(mode), "a special file"))


def _stat_failure(name: str, exc: OSError) -> DecodeFailure:
    if exc.errno == errno.ELOOP:
        return DecodeFailure(name, DecodeReason.BROKEN_LINK, "a loop of symbolic links")
    if exc.errno == errno.ENOENT and os.path.islink(name):
        try:
            target = os.readlink(name)
        except OSError:  # removed since the stat: the link is just as broken
            target = "?"
        return DecodeFailure(name, DecodeReason.BROKEN_LINK, f"a symbolic link to {target!r}, which does not exist")
    if exc.errno == errno.ENOENT:
        return DecodeFailure(name, DecodeReason.MISSING_FILE, "no such file")
    return DecodeFailure(name, DecodeReason.UNREADABLE, exc.strerror or str(exc))


def is_dicom(path: str | os.PathLike) -> bool:
    """True when the file starts with a DICOM preamble or has a DICOM extension.

    Only regular files are opened (see :func:`regular_file_failure`); anything
    else is not DICOM.
    """
    path = Path(path)
    if regular_file_failure(path) is not None:
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or path.suffix.lower() in {".dcm", ".dicom"}


def read_image(path: str | os.PathLike, crop: tuple[int, int, int, int] | None = None) -> DecodedImage:
    """Decode ``path`` into normalized grayscale pixels.

    Parameters
    ----------
    path : path
        An image file (PNG, JPEG, TIFF, BMP or DICOM, with or without extension).
        A pipe, socket, device or broken link is reported, never opened.
    crop : (x0, y0, x1, y1), optional
        Pixel box (half-open) of the region that is the sample.

    Returns
    -------
    DecodedImage

    Raises
    ------
    DecodeFailure
        With a :class:`DecodeReason` when the file cannot be decoded.
    """
    path = Path(path)
    failure = regular_file_failure(path)
    if failure is not None:
        raise failure
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DecodeFailure(str(path), DecodeReason.MISSING_FILE, "no such file") from None
    except OSError as exc:
        raise DecodeFailure(str(path), DecodeReason.UNREADABLE, str(exc)) from None
    return decode_image(data, str(path), crop)


def decode_image(data: bytes, name: str, crop: tuple[int, int, int, int] | None = None) -> DecodedImage:
    """Decode the bytes of an image file; ``name`` (its path) picks the format hint and names errors.

    Callers that also hash the file read it once and pass the bytes here.
    """
    if len(data) == 0:
        raise DecodeFailure(name, DecodeReason.ZERO_BYTES, "the file is empty")
    suffix = os.path.splitext(name)[1].lower()  # as Path(name).suffix, without pathlib's parsing (a scan decodes thousands)
    if data[128:132] == b"DICM" or suffix in _DICOM_EXTENSIONS:
        image = _read_dicom(data, name)
    elif (image := _read_gray_png(data)) is not None:
        pass
    else:
        try:
            image = _read_pillow(data, name)
        except DecodeFailure as failure:
            if failure.reason is not DecodeReason.NOT_AN_IMAGE:
                raise
            image = _read_dicom(data, name, fallback_failure=failure)
    if crop is not None:
        image = _apply_crop(name, image, crop)
    return image


def try_read_image(
    path: str | os.PathLike, crop: tuple[int, int, int, int] | None = None
) -> DecodedImage | DecodeFailure:
    """Like :func:`read_image` but return the failure instead of raising it."""
    try:
        return read_image(path, crop)
    except DecodeFailure as failure:
        return failure


def _apply_crop(name: str, image: DecodedImage, crop: tuple[int, int, int, int]) -> DecodedImage:
    x0, y0, x1, y1 = crop
    height, width = image.shape
    if x1 > width or y1 > height:
        raise DecodeFailure(
            name, DecodeReason.BAD_CROP, f"crop {x0},{y0},{x1},{y1} exceeds the {width}x{height} image"
        )
    image.crop(crop)
    return image


# --------------------------------------------------------------------------- Pillow


def _effective_bits(max_value: int) -> int:
    """Bits a 16-bit container really uses: 10, 12, 14 or 16 (12-bit data in 16-bit PNGs is common)."""
    for bits in (8, 10, 12, 14, 16):
        if max_value < 2**bits:
            return bits
    return 16


def _read_pillow(data: bytes, name: str) -> DecodedImage:
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or Path(name).suffix.lstrip(".").upper()
            n_frames = getattr(img, "n_frames", 1)
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except UnidentifiedImageError:
        raise DecodeFailure(name, DecodeReason.NOT_AN_IMAGE, "not a format Pillow or pydicom can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        message = str(exc)
        reason = DecodeReason.TRUNCATED if "truncated" in message.lower() else DecodeReason.CORRUPT_PIXEL_DATA
        raise DecodeFailure(name, reason, message) from None
    except Image.DecompressionBombError as exc:
        raise DecodeFailure(name, DecodeReason.CORRUPT_PIXEL_DATA, str(exc)) from None

    notes: list[str] = []
    color = "gray"
    if mode == "P":
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB"))
        mode = arr.shape[-1] == 4 and "RGBA" or "RGB"
    if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr"):
        if mode == "CMYK" or mode == "YCbCr":
            with Image.open(io.BytesIO(data)) as img:
                arr = np.asarray(img.convert("RGB"))
        channels = arr[..., :1] if mode == "LA" else arr[..., :3]
        pixels, color = _collapse_channels(channels.astype(np.float32) / 255.0)
        bits = 8
    elif mode == "1":
        pixels, bits = arr.astype(np.float32), 1
    elif mode == "L":
        pixels, bits = None, 8
    elif mode.startswith("I"):
        pixels, bits = _normalized_16bit(arr, notes)
    elif mode == "F":
        pixels, bits = _minmax(arr), 32
    else:
        raise DecodeFailure(name, DecodeReason.NOT_AN_IMAGE, f"unsupported Pillow mode {mode}")
    if n_frames > 1:
        notes.append(f"{n_frames} frames: the first is used")
    height, width = arr.shape[:2]
    facts = ImageFacts(
        format=fmt, width=width, height=height, bits_stored=bits, color=color, n_frames=n_frames, notes=notes
    )
    if pixels is None:  # 8-bit gray: keep the file's own values
        return DecodedImage(None, facts, uint8=np.ascontiguousarray(arr))
    return DecodedImage(np.ascontiguousarray(pixels, dtype=np.float32), facts)


def _normalized_16bit(arr: np.ndarray, notes: list[str]) -> tuple[np.ndarray, int]:
    """Pixels of a 16-bit (or 32-bit integer) image scaled by the bits it really uses; notes what was found."""
    values = arr.astype(np.int64)
    if values.min() < 0:
        notes.append("negative values: normalized from the image's own range")
        return _minmax(values), 16
    used = _effective_bits(int(values.max()) if values.size else 0)
    if used < 16:
        notes.append(f"{used}-bit values in a 16-bit container")
    return (values / float(2**used - 1)).astype(np.float32), 16


def _collapse_channels(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    if rgb.shape[-1] == 1 or float(spread.max(initial=0.0)) <= _GRAY_TOLERANCE:
        return rgb.mean(axis=-1), "gray-in-rgb" if rgb.shape[-1] > 1 else "gray"
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return luma, "color"


def _minmax(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


# --------------------------------------------------------------------------- grayscale PNG

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _read_gray_png(data: bytes) -> DecodedImage | None:
    """A complete 8- or 16-bit grayscale PNG, decoded by :mod:`curate._png` or OpenCV's libpng; None for any other file.

    Radiographs usually come as such PNGs. :func:`curate._png.decode_gray_png`
    decodes them about twice as fast as libpng, and libpng about a fifth faster
    than Pillow, straight into an array; the result is the same as Pillow's.
    A file the fast decoder does not vouch for goes to libpng; any other file, a
    truncated one (no IEND at the end), and a file libpng refuses go to Pillow,
    which decodes it or names what is wrong.
    """
    if not (data.startswith(_PNG_SIGNATURE) and data.endswith(_PNG_END) and data[12:16] == b"IHDR"):
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    bit_depth, color_type = data[24], data[25]
    if color_type != 0 or bit_depth not in (8, 16) or width * height > (Image.MAX_IMAGE_PIXELS or np.inf):
        return None  # Pillow's limit on pixels stays the one limit
    from curate import _png  # imported on first use: numba takes a quarter of a second to import

    arr = _png.decode_gray_png(data)
    if arr is None:
        if not _plain_header_chunks(data):
            return None
        cv2 = opencv()
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None or arr.shape != (height, width):
            return None
    facts = ImageFacts(format="PNG", width=width, height=height, bits_stored=8, notes=[])
    if bit_depth == 8:
        return DecodedImage(None, facts, uint8=arr)
    pixels, facts.bits_stored = _normalized_16bit(arr, facts.notes)
    return DecodedImage(pixels, facts)


def _plain_header_chunks(data: bytes) -> bool:
    """Whether every chunk before the pixel data has a good checksum and none makes the PNG animated.

    Pillow refuses a header chunk with a bad checksum where libpng only warns, and
    notes an animated PNG's frames; both go to Pillow. The header chunks are small.
    """
    from curate._png import chunks

    for kind, _, crc_ok in chunks(data):
        if kind == b"IDAT":
            return True
        if kind == b"acTL" or not crc_ok:
            return False
    return False


# --------------------------------------------------------------------------- DICOM


def _dcmread(source, name: str, **kwargs):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(source, force=True, **kwargs)
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DecodeFailure(name, DecodeReason.NOT_AN_IMAGE, f"not a readable DICOM file ({exc})") from None


def _transfer_syntax(ds):
    meta = getattr(ds, "file_meta", None)
    return None if meta is None else meta.get("TransferSyntaxUID")


def _read_dicom(data: bytes, name: str, fallback_failure: DecodeFailure | None = None) -> DecodedImage:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut
    from pydicom.uid import ImplicitVRLittleEndian

    try:
        ds = _dcmread(io.BytesIO(data), name)
    except DecodeFailure:
        if fallback_failure is not None:
            raise fallback_failure from None
        raise
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    if not has_pixels:
        if fallback_failure is not None:  # not DICOM either: keep Pillow's verdict
            raise fallback_failure
        what = "no file meta and no pixel data" if not getattr(ds, "file_meta", None) else "no pixel data element"
        raise DecodeFailure(name, DecodeReason.MISSING_PIXEL_DATA, what)
    notes: list[str] = []
    if _transfer_syntax(ds) is None:
        if not all(k in ds for k in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel")):
            raise DecodeFailure(
                name,
                DecodeReason.MISSING_TRANSFER_SYNTAX,
                "the file meta has no Transfer Syntax UID and the image attributes are missing",
            )
        # pydicom parsed the data set as implicit VR little endian; decode it the same way.
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        notes.append("no transfer syntax: assumed implicit VR little endian")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except Exception as exc:  # pydicom raises many types here; all mean "pixels unusable"
        raise DecodeFailure(name, _classify_pixel_error(exc, ds), _first_line(exc)) from None

    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if n_frames > 1:
        arr = arr[0]
        notes.append(f"{n_frames} frames: the first is used")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    color = "gray"
    if arr.ndim == 3:  # colour DICOM (pydicom converts YBR to RGB)
        pixels, color = _collapse_channels(_minmax(arr) if arr.dtype != np.uint8 else arr.astype(np.float32) / 255)
    else:
        values = apply_modality_lut(arr, ds)
        pixels = _apply_voi(ds, values, apply_voi_lut)
        if photometric == "MONOCHROME1":
            pixels = 1.0 - pixels  # low values are white in MONOCHROME1: bone must end up bright
    height, width = pixels.shape
    facts = ImageFacts(
        format="DICOM",
        width=width,
        height=height,
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8),
        photometric=photometric,
        color=color,
        n_frames=n_frames,
        notes=notes,
    )
    return DecodedImage(np.ascontiguousarray(pixels, dtype=np.float32), facts)


def _apply_voi(ds, values: np.ndarray, apply_voi_lut) -> np.ndarray:
    """Map modality values to [0, 1] by the VOI LUT, else the window, else the value range."""
    if "VOILUTSequence" in ds:
        return _minmax(apply_voi_lut(values, ds, index=0))
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        center = float(center[0] if _is_multi(center) else center)
        width = float(width[0] if _is_multi(width) else width)
        if width >= 1:
            # DICOM PS3.3 C.11.2.1.2 linear window
            scaled = (values.astype(np.float64) - (center - 0.5)) / (width - 1) + 0.5
            return np.clip(scaled, 0.0, 1.0).astype(np.float32)
    return _minmax(values)


def _is_multi(value) -> bool:
    return not isinstance(value, (str, bytes)) and hasattr(value, "__len__")


def _classify_pixel_error(exc: Exception, ds) -> DecodeReason:
    message = str(exc).lower()
    if "less than expected" in message or "truncat" in message or "end of file" in message:
        return DecodeReason.TRUNCATED
    if "transfer syntax" in message and ("no (0002,0010)" in message or "missing" in message):
        return DecodeReason.MISSING_TRANSFER_SYNTAX
    if isinstance(exc, NotImplementedError) or "no pixel data decoders" in message or "not supported" in message:
        return DecodeReason.UNSUPPORTED_TRANSFER_SYNTAX
    return DecodeReason.CORRUPT_PIXEL_DATA


def _first_line(exc: Exception) -> str:
    """The first two lines of an error, joined: pydicom puts the cause on the second."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] if lines else type(exc).__name__


_HEADER_FIELDS = {
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "photometric": "PhotometricInterpretation",
    "bits_stored": "BitsStored",
    "rows": "Rows",
    "columns": "Columns",
    "view": "ViewPosition",
    "dicom_patient_id": "PatientID",
    "sop_instance_uid": "SOPInstanceUID",
    "burned_in_annotation": "BurnedInAnnotation",
}


def read_dicom_header(path: str | os.PathLike) -> dict[str, object]:
    """Read the catalog's DICOM fields without decoding pixels.

    Returns a dict with ``modality``, ``body_part``, ``laterality`` (ImageLaterality,
    else Laterality), ``photometric``, ``bits_stored``, ``rows``, ``columns``,
    ``view``, ``dicom_patient_id`` and ``sop_instance_uid``; absent tags are None.

    Raises
    ------
    DecodeFailure
        When the file is not DICOM at all.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise DecodeFailure(str(path), DecodeReason.ZERO_BYTES, "the file is empty")
    ds = _dcmread(path, str(path), stop_before_pixels=True)
    if len(ds) == 0:
        raise DecodeFailure(str(path), DecodeReason.NOT_AN_IMAGE, "no DICOM elements")
    header: dict[str, object] = {}
    for key, keyword in _HEADER_FIELDS.items():
        value = ds.get(keyword)
        if value is None or value == "":
            header[key] = None
        elif key in ("bits_stored", "rows", "columns"):
            header[key] = int(value)
        else:
            header[key] = str(value).strip() or None
    laterality = ds.get("ImageLaterality") or ds.get("Laterality")
    header["laterality"] = str(laterality).strip().upper() or None if laterality else None
    return header

"""The fast grayscale PNG decoder: Pillow's pixels for every filter, None for any file it does not vouch for."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from curate import _png
from curate.imaging import DecodeFailure, decode_image


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filtered(pixels: np.ndarray, filters: list[int]) -> bytes:
    """PNG scanlines of ``pixels`` (uint8 or uint16), row ``y`` filtered with ``filters[y]`` (the spec's encoder)."""
    rows = pixels.astype(">u2").view(np.uint8) if pixels.dtype == np.uint16 else pixels
    rows = rows.reshape(len(pixels), -1).astype(np.int64)
    bpp = pixels.dtype.itemsize
    out = []
    for y, kind in enumerate(filters):
        x = rows[y]
        a = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])  # left; zero before the first pixel
        b = rows[y - 1] if y else np.zeros_like(x)  # above; zero above the first row
        c = np.concatenate([np.zeros(bpp, np.int64), b[:-bpp]])
        prediction = [np.zeros_like(x), a, b, (a + b) // 2, _paeth(a, b, c)][kind]
        out.append(bytes([kind]) + ((x - prediction) % 256).astype(np.uint8).tobytes())
    return b"".join(out)


def _chunk(kind: bytes, body: bytes, *, crc_delta: int = 0) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) ^ crc_delta)


def _make_png(
    pixels: np.ndarray,
    filters: list[int],
    *,
    parts: int = 1,
    stream: bytes | None = None,
    interlace: int = 0,
    header: bytes | None = None,
    before_idat: bytes = b"",
) -> bytes:
    """A grayscale PNG of ``pixels`` with chosen row filters, its compressed data split over ``parts`` IDAT chunks.

    ``header`` replaces the IHDR body; ``before_idat`` is inserted (whole chunks) before the first IDAT.
    """
    height, width = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, interlace) if header is None else header
    stream = zlib.compress(_filtered(pixels, filters)) if stream is None else stream
    cuts = np.linspace(0, len(stream), parts + 1).astype(int)
    idat = b"".join(_chunk(b"IDAT", stream[lo:hi]) for lo, hi in zip(cuts[:-1], cuts[1:]))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + before_idat + idat + _chunk(b"IEND", b"")


def _with_window(stream: bytes, cinfo: int) -> bytes:
    """``stream`` with its zlib header claiming a window of 2**(cinfo + 8) bytes (FCHECK made valid again)."""
    cmf = (cinfo << 4) | 8
    flg = stream[1] & 0xE0
    flg |= (31 - (cmf * 256 + flg) % 31) % 31
    return bytes([cmf, flg]) + stream[2:]


def _decode(data: bytes) -> np.ndarray | None:
    return _png.decode_gray_png(data)


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img).astype(np.uint16 if data[24] == 16 else np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
def test_each_filter_type_decodes_to_the_pixels_pillow_reads(kind, dtype):
    rng = np.random.default_rng(kind)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, (9, 13), dtype=dtype)
    data = _make_png(pixels, [kind] * len(pixels))
    decoded = _decode(data)
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, pixels)
    np.testing.assert_array_equal(decoded, _pillow(data))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (31, 17)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_mixed_filters_odd_shapes_and_split_data_decode_exactly(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    # smooth images make the predictors' ties and wrap-arounds common
    smooth = np.cumsum(rng.integers(-2, 3, shape), axis=1).astype(dtype)
    for image in (pixels, smooth):
        data = _make_png(image, rng.integers(0, 5, shape[0]).tolist(), parts=3)
        np.testing.assert_array_equal(_decode(data), image)
        np.testing.assert_array_equal(_decode(data), _pillow(data))


def test_pillows_own_files_decode_as_pillow_reads_them():
    rng = np.random.default_rng(5)
    for pixels in (rng.integers(0, 256, (40, 57), dtype=np.uint8), rng.integers(0, 4096, (33, 20), dtype=np.uint16)):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
        np.testing.assert_array_equal(_decode(buffer.getvalue()), pixels)


def _short_header_png() -> bytes:
    """A 12-byte IHDR whose CRC happens to start with a zero byte, so the 13th byte reads as valid."""
    for width in range(1, 5000):
        body = struct.pack(">IIBBBB", width, 4, 8, 0, 0, 0)
        if zlib.crc32(b"IHDR" + body) >> 24 == 0:
            pixels = np.zeros((4, width), dtype=np.uint8)
            return _make_png(pixels, [0] * 4, header=body)
    raise AssertionError("no such width")


def _broken_variants() -> dict[str, bytes]:
    pixels = np.random.default_rng(6).integers(0, 256, (16, 24), dtype=np.uint8)
    filters = [4] * 16
    good = _make_png(pixels, filters, parts=2)
    stream = zlib.compress(_filtered(pixels, filters))
    flipped = bytearray(stream)
    flipped[len(stream) // 2] ^= 0x10  # a wrong bit inside the compressed data, its chunk's CRC made to match
    first_idat = good.index(b"IDAT") - 4
    bad_crc = bytearray(good)
    bad_crc[good.index(b"IEND") - 5] ^= 1  # the last IDAT chunk's CRC
    wrong_filter = _filtered(pixels, filters)
    wrong_filter = wrong_filter[: 25 * 3] + b"\x05" + wrong_filter[25 * 3 + 1 :]  # row 3's filter byte: 5 is no filter
    text = _chunk(b"tEXt", b"k\x00v")
    idat_chunks = good[first_idat : good.index(b"IEND") - 4]
    first_len = struct.unpack(">I", idat_chunks[:4])[0] + 12
    def header(width: int, height: int) -> bytes:
        return struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    return {
        "zero width": _make_png(pixels, filters, header=header(0, 16), stream=zlib.compress(b"\x01" * 16)),
        "zero height": _make_png(pixels, filters, header=header(24, 0), stream=zlib.compress(b"")),
        "IHDR one byte short": _short_header_png(),
        "a second IHDR": _make_png(pixels, filters, before_idat=_chunk(b"IHDR", header(6, 2))),
        "a chunk type that is not letters": _make_png(pixels, filters, before_idat=_chunk(b"\0\0\0\0", b"x")),
        "zlib window zlib refuses": _make_png(pixels, filters, stream=_with_window(stream, 8)),
        "far more data than the header holds": _make_png(
            pixels[:1, :1], [0], stream=zlib.compress(bytes(20_000_000))  # 20 MB from a 20 KB file
        ),
        "flipped bit, CRC matching": _make_png(pixels, filters, stream=bytes(flipped)),
        "bad IDAT CRC": bytes(bad_crc),
        "unknown filter type": _make_png(pixels, filters, stream=zlib.compress(wrong_filter)),
        "stream cut short": _make_png(pixels, filters, stream=stream[:-9]),
        "stream too long": _make_png(pixels, filters + [0], stream=zlib.compress(_filtered(np.vstack([pixels, pixels[:1]]), filters + [0]))),
        "interlaced": _make_png(pixels, filters, interlace=1),
        "IDAT run broken by another chunk": good[:first_idat] + idat_chunks[:first_len] + text + idat_chunks[first_len:] + _chunk(b"IEND", b""),
        "no IEND": good[: good.index(b"IEND") - 4],
    }


@pytest.mark.parametrize("name", list(_broken_variants()))
def test_a_file_the_fast_decoder_does_not_vouch_for_is_declined(name):
    assert _decode(_broken_variants()[name]) is None


def test_a_file_claiming_too_little_is_declined_after_inflating_only_what_it_claims():
    import tracemalloc

    data = _broken_variants()["far more data than the header holds"]
    tracemalloc.start()
    assert _decode(data) is None
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000  # the 20 MB it holds were never inflated


def test_a_window_zlib_accepts_is_decoded():
    pixels = np.random.default_rng(7).integers(0, 256, (16, 24), dtype=np.uint8)
    stream = zlib.compress(_filtered(pixels, [1] * 16))
    np.testing.assert_array_equal(_decode(_make_png(pixels, [1] * 16, stream=_with_window(stream, 7))), pixels)


@pytest.mark.parametrize("name", list(_broken_variants()))
def test_declined_files_are_decoded_or_reported_exactly_as_without_the_fast_decoder(name, monkeypatch):
    data = _broken_variants()[name]

    def outcome():
        try:
            image = decode_image(data, "x.png")
        except DecodeFailure as failure:
            return failure.reason
        return image.as_uint8().tobytes()

    with_fast = outcome()
    monkeypatch.setattr(_png, "decode_gray_png", lambda data: None)
    assert with_fast == outcome()


def test_real_knee_radiographs_decode_as_libpng_decodes_them(shared_data):
    import cv2

    paths = sorted((shared_data / "knee_kl_sample").rglob("*.png"))[:60]
    assert paths
    for path in paths:
        data = path.read_bytes()
        decoded = _decode(data)
        assert decoded is not None, path
        np.testing.assert_array_equal(decoded, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))

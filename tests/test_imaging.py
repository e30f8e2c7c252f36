from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curate.imaging import (
    DecodedImage,
    DecodeFailure,
    DecodeReason,
    is_dicom,
    read_dicom_header,
    read_image,
    regular_file_failure,
    try_read_image,
)
from curate.quality.measures import measure_file
from tests.conftest import write_dicom, write_png
from tests.loaders._odd import deadline, make_odd_entries


@pytest.fixture
def ramp() -> np.ndarray:
    return np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))  # 48 x 64, dark left, bright right


def test_png_8bit_is_normalized_to_unit_range(tmp_path, ramp):
    image = read_image(write_png(tmp_path / "a.png", ramp))
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (48, 64)
    np.testing.assert_allclose(image.pixels, ramp / 255.0, atol=1e-6)
    assert image.facts.bits_stored == 8 and image.facts.color == "gray"


def test_16bit_png_is_not_clipped_and_matches_the_8bit_original(tmp_path, ramp):
    full = write_png(tmp_path / "full.png", ramp.astype(np.uint16) * 257)
    twelve = write_png(tmp_path / "twelve.png", ramp.astype(np.uint16) * 16)
    for path in (full, twelve):
        image = read_image(path)
        assert image.facts.bits_stored == 16
        np.testing.assert_allclose(image.pixels, ramp / 255.0, atol=2 / 255)
    assert "12-bit values" in read_image(twelve).facts.notes[0]


def test_rgb_that_is_really_gray_is_read_as_gray(tmp_path, ramp):
    rgb = np.stack([ramp] * 3, axis=-1)
    path = tmp_path / "gray.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    image = read_image(path)
    assert image.facts.color == "gray-in-rgb"
    assert np.abs(image.pixels - ramp / 255.0).mean() < 0.02
    colour = rgb.copy()
    colour[..., 0] = 255
    image = read_image(write_png(tmp_path / "red.png", colour))
    assert image.facts.color == "color"


def test_rgba_drops_alpha(tmp_path, ramp):
    rgba = np.stack([ramp, ramp, ramp, np.full_like(ramp, 255)], axis=-1)
    image = read_image(write_png(tmp_path / "a.png", rgba))
    assert image.facts.color == "gray-in-rgb"
    np.testing.assert_allclose(image.pixels, ramp / 255.0, atol=1e-6)


def test_crop_takes_the_named_region(tmp_path, ramp):
    image = read_image(write_png(tmp_path / "a.png", ramp), crop=(32, 0, 64, 48))
    assert image.pixels.shape == (48, 32) and image.pixels.min() >= 128 / 255
    with pytest.raises(DecodeFailure) as err:
        read_image(tmp_path / "a.png", crop=(0, 0, 100, 10))
    assert err.value.reason is DecodeReason.BAD_CROP


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", DecodeReason.ZERO_BYTES),
        (b"<html><body>404 Not Found</body></html>", DecodeReason.NOT_AN_IMAGE),
    ],
)
def test_broken_files_give_a_typed_reason(tmp_path, content, reason):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    failure = try_read_image(path)
    assert isinstance(failure, DecodeFailure) and failure.reason is reason
    assert str(path) in str(failure)


def test_truncated_png_and_missing_file(tmp_path, ramp):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)).save(buffer, "PNG")
    path = tmp_path / "t.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert try_read_image(path).reason is DecodeReason.TRUNCATED
    assert try_read_image(tmp_path / "nope.png").reason is DecodeReason.MISSING_FILE


def test_monochrome1_is_inverted_so_high_attenuation_is_bright(tmp_path, ramp):
    raw = ramp.astype(np.uint16) * 16
    mono2 = read_image(write_dicom(tmp_path / "m2.dcm", raw))
    mono1 = read_image(write_dicom(tmp_path / "m1.dcm", raw, photometric="MONOCHROME1"))
    np.testing.assert_allclose(mono1.pixels, 1.0 - mono2.pixels, atol=1e-6)
    assert mono1.facts.photometric == "MONOCHROME1"


def test_dicom_window_is_applied_without_clipping_12bit_data(tmp_path):
    raw = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (8, 1))
    windowed = read_image(write_dicom(tmp_path / "w.dcm", raw, window=(2048, 4096))).pixels
    assert windowed.min() < 0.01 and windowed.max() > 0.99
    assert np.all(np.diff(windowed[0]) > 0)  # every 12-bit step stays distinct: nothing clipped
    narrow = read_image(write_dicom(tmp_path / "n.dcm", raw, window=(1000, 500))).pixels
    assert narrow[0, -1] == 1.0 and narrow[0, 0] == 0.0


def test_dicom_without_extension_and_without_preamble_is_read(tmp_path, ramp):
    path = write_dicom(tmp_path / "0001", ramp, preamble=False)
    image = read_image(path)
    assert isinstance(image, DecodedImage) and image.facts.format == "DICOM"


def test_dicom_header_is_read_without_pixels(tmp_path, ramp):
    path = write_dicom(tmp_path / "h.dcm", ramp, patient_id="9001", laterality="R", modality="CR")
    header = read_dicom_header(path)
    assert header["modality"] == "CR" and header["laterality"] == "R" and header["dicom_patient_id"] == "9001"
    assert (header["rows"], header["columns"]) == (48, 64) and header["body_part"] == "KNEE"


# ---------------------------------------------------------------- real files


def _bone_is_bright(name: str, pixels: np.ndarray) -> bool:
    h, w = pixels.shape
    if name == "RG3_J2KR.dcm":  # a leg: the tibia shaft is brighter than the air beside it
        band = pixels[int(0.3 * h) : int(0.5 * h)]
        return band[:, int(0.48 * w) : int(0.56 * w)].mean() > band[:, int(0.30 * w) : int(0.36 * w)].mean() + 0.3
    # chests: spine and mediastinum brighter than the lung fields
    centre = pixels[int(0.3 * h) : int(0.6 * h), int(0.46 * w) : int(0.54 * w)].mean()
    lungs = pixels[int(0.3 * h) : int(0.6 * h), int(0.25 * w) : int(0.33 * w)].mean()
    return centre > lungs + 0.05


def test_real_radiographs_decode_with_bone_bright(shared_data):
    folder = shared_data / "dicom_samples" / "radiographs"
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == 3
    for path in files:
        image = read_image(path)
        assert image.pixels.min() >= 0 and image.pixels.max() <= 1
        assert _bone_is_bright(path.name, image.pixels), path.name


def test_real_broken_dicoms_each_give_their_own_reason(shared_data):
    folder = shared_data / "dicom_samples" / "broken"
    reasons = {path.name: try_read_image(path) for path in sorted(folder.glob("*.dcm"))}
    assert {name: f.reason for name, f in reasons.items()} == {
        "JPEG-lossy.dcm": DecodeReason.CORRUPT_PIXEL_DATA,
        "MR_truncated.dcm": DecodeReason.TRUNCATED,
        "meta_missing_tsyntax.dcm": DecodeReason.MISSING_TRANSFER_SYNTAX,
        "no_meta.dcm": DecodeReason.MISSING_PIXEL_DATA,
    }
    assert all(f.detail for f in reasons.values())


def _png_bytes(pixels: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **save)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "pixels, save",
    [
        (np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8), {}),
        (np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8), {"optimize": True}),
        (np.random.default_rng(2).integers(0, 4096, (40, 31), dtype=np.uint16), {}),  # 12 bits in 16
        (np.random.default_rng(3).integers(0, 65536, (16, 16), dtype=np.uint16), {}),
        (np.zeros((8, 8), dtype=np.uint16), {}),
        (np.random.default_rng(4).integers(0, 256, (20, 20), dtype=np.uint8), {"transparency": 7}),
    ],
)
def test_grayscale_png_fast_path_gives_pillows_pixels_and_facts(pixels, save):
    from curate.imaging import _read_gray_png, _read_pillow

    data = _png_bytes(pixels, **save)
    fast, reference = _read_gray_png(data), _read_pillow(data, "x.png")
    assert fast is not None  # the fast path took the file
    assert fast.facts == reference.facts
    np.testing.assert_array_equal(fast.pixels, reference.pixels)
    np.testing.assert_array_equal(fast.as_uint8(), reference.as_uint8())


def test_png_the_fast_path_refuses_still_decodes_or_fails_with_its_reason(tmp_path, ramp):
    from curate.imaging import _read_gray_png, _read_pillow

    data = _png_bytes(ramp)
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF  # inside the pixel data, the end marker intact
    colour = _png_bytes(np.stack([ramp] * 3, axis=-1))
    for name, content in {"corrupt.png": bytes(corrupt), "colour.png": colour, "cut.png": data[: len(data) // 2]}.items():
        assert _read_gray_png(content) is None
        (tmp_path / name).write_bytes(content)
    try:  # libpng refuses the broken chunk; the result is whatever Pillow makes of the file
        expected = _read_pillow(bytes(corrupt), str(tmp_path / "corrupt.png"))
    except DecodeFailure as failure:
        expected = failure
    got = try_read_image(tmp_path / "corrupt.png")
    assert type(got) is type(expected)
    if isinstance(got, DecodeFailure):
        assert got.reason is expected.reason
    else:
        np.testing.assert_array_equal(got.as_uint8(), expected.as_uint8())
    assert read_image(tmp_path / "colour.png").facts.color == "gray-in-rgb"
    assert try_read_image(tmp_path / "cut.png").reason is DecodeReason.TRUNCATED


def _with_chunk(data: bytes, kind: bytes, body: bytes, *, bad_crc: bool = False) -> bytes:
    """``data`` (a PNG) with one more chunk right after its header chunk."""
    import struct
    import zlib

    crc = zlib.crc32(kind + body) ^ (1 if bad_crc else 0)
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
    return data[:33] + chunk + data[33:]


def test_header_chunks_the_fast_path_cannot_judge_go_to_pillow(ramp):
    from curate.imaging import _read_gray_png, _read_pillow

    data = _png_bytes(ramp)
    bad_crc = _with_chunk(data, b"tEXt", b"note\x00hello", bad_crc=True)
    # an animation control chunk after a text chunk that happens to contain b"IDAT"
    animated = _with_chunk(_with_chunk(data, b"acTL", b"\x00\x00\x00\x02\x00\x00\x00\x00"), b"tEXt", b"k\x00IDAT")
    for content in (bad_crc, animated):
        assert _read_gray_png(content) is None
    with pytest.raises(DecodeFailure):
        _read_pillow(bad_crc, "x.png")  # Pillow refuses what libpng would only warn about
    assert _read_gray_png(_with_chunk(data, b"tEXt", b"note\x00hello")) is not None  # a good text chunk is fine


@pytest.fixture
def odd_entries(tmp_path):
    """A named pipe, a socket, broken links and a folder, each named like an image; the test fails at 30 s."""
    with deadline(30):
        expected = {name: DecodeReason(kind) for name, kind in make_odd_entries(tmp_path, "{kind}.dcm").items()}
        (tmp_path / "folder.dcm").mkdir()
        yield tmp_path, expected | {"folder.dcm": DecodeReason.NOT_A_REGULAR_FILE}


def test_pipes_sockets_broken_links_and_folders_are_named_never_opened(odd_entries):
    folder, expected = odd_entries
    for name, reason in expected.items():
        failure = try_read_image(folder / name)
        assert (name, failure.reason) == (name, reason)
        assert regular_file_failure(folder / name).reason is reason
        assert not is_dicom(folder / name)  # a .dcm name alone does not make one
    assert try_read_image(folder / "pipe.dcm").detail == "a named pipe (FIFO)"
    assert try_read_image(folder / "socket.dcm").detail == "a socket"
    assert try_read_image(folder / "loop.dcm").detail == "a loop of symbolic links"
    dangling = try_read_image(folder / "dangling.dcm").detail
    assert dangling == "a symbolic link to 'does-not-exist.dcm', which does not exist"
    assert regular_file_failure(folder / "nope.dcm").reason is DecodeReason.MISSING_FILE


def test_a_link_to_a_file_is_a_regular_file(tmp_path, ramp):
    (tmp_path / "link.png").symlink_to(write_png(tmp_path / "a.png", ramp))
    assert regular_file_failure(tmp_path / "link.png") is None
    assert read_image(tmp_path / "link.png").shape == (48, 64)


def test_the_scan_measures_pipes_and_broken_links_as_unreadable_without_opening_them(odd_entries):
    folder, expected = odd_entries
    for name, reason in expected.items():
        row = measure_file(folder / name)
        assert (row["readable"], row["error"], row.get("file_sha256")) == (False, reason.value, None)
    assert measure_file(folder / "pipe.dcm")["error_detail"] == "a named pipe (FIFO)"

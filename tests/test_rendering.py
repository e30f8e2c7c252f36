"""The one image policy: what may be linked, what is rendered, and the trainer-side preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from curate.errors import CurateError
from curate.imaging import read_image
from curate.rendering import Preprocessing, encode, render, shown_as_is, why_converted
from tests.conftest import write_dicom, write_png


def _gradient(height: int = 60, width: int = 90) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 2 + y) % 256).astype(np.uint8)


def _pillow_reader(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_plain_8bit_files_are_shown_as_they_are_and_the_rest_say_why(tmp_path):
    gray = write_png(tmp_path / "gray.png", _gradient())
    rgb = tmp_path / "rgb.jpg"
    Image.fromarray(np.dstack([_gradient()] * 3)).save(rgb)
    deep = write_png(tmp_path / "deep.png", _gradient().astype(np.uint16) * 16)
    palette = tmp_path / "palette.png"
    Image.fromarray(_gradient()).convert("P").save(palette)
    dicom = write_dicom(tmp_path / "IM0001", _gradient().astype(np.uint16) * 16)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert shown_as_is(gray) and shown_as_is(rgb)
    assert why_converted(gray, "0,0,10,10") == "crop"
    assert why_converted(deep) == "mode I;16"
    assert why_converted(palette) == "mode P"
    assert why_converted(dicom) == "DICOM"
    assert why_converted(junk).startswith("not a file Pillow opens")


def test_a_12_bit_png_rendered_is_what_the_scan_sees_where_pillow_shows_white(tmp_path):
    deep = write_png(tmp_path / "deep.png", _gradient().astype(np.uint16) * 16)
    assert (_pillow_reader(deep) == 255).mean() > 0.9  # the problem: a white square
    rendered = render(deep)
    assert rendered.dtype == np.uint8
    np.testing.assert_array_equal(rendered, read_image(deep).as_uint8())
    out = tmp_path / "out.png"
    out.write_bytes(encode(rendered))
    np.testing.assert_array_equal(_pillow_reader(out)[..., 0], rendered)
    with Image.open(out) as image:  # no text chunks: nothing from the source travels along
        assert image.mode == "L" and not image.text


def test_monochrome1_dicom_is_rendered_bone_bright(tmp_path):
    values = _gradient().astype(np.uint16) * 16
    mono1 = write_dicom(tmp_path / "m1.dcm", values, photometric="MONOCHROME1")
    mono2 = write_dicom(tmp_path / "m2.dcm", values)
    np.testing.assert_allclose(render(mono1).astype(int), 255 - render(mono2).astype(int), atol=1)


@pytest.mark.parametrize(
    ("fit", "inside"),
    [("pad", (slice(30, 90), slice(0, 120))), ("crop", (slice(0, 120), slice(0, 120))), ("stretch", (slice(0, 120), slice(0, 120)))],
)
def test_size_and_fit(tmp_path, fit, inside):
    path = write_png(tmp_path / "wide.png", np.full((60, 120), 200, dtype=np.uint8))
    pixels = render(path, preprocessing=Preprocessing(size=120, fit=fit))
    assert pixels.shape == (120, 120)
    assert (pixels[inside] == 200).all()
    if fit == "pad":  # the aspect ratio is kept: black bands above and below
        assert (pixels[:30] == 0).all() and (pixels[90:] == 0).all()


def test_crop_fit_keeps_the_centre(tmp_path):
    pixels = np.zeros((50, 150), dtype=np.uint8)
    pixels[:, 50:100] = 255
    path = write_png(tmp_path / "centre.png", pixels)
    out = render(path, preprocessing=Preprocessing(size=50, fit="crop"))
    assert out.shape == (50, 50) and (out == 255).all()


def test_percentile_window_clahe_and_16_bit(tmp_path):
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(100, 10, (64, 64)), 0, 255).astype(np.uint8)
    path = write_png(tmp_path / "narrow.png", pixels)
    stretched = render(path, preprocessing=Preprocessing(window="percentile", percentiles=(1, 99)))
    assert stretched.min() == 0 and stretched.max() == 255  # the narrow range now spans black to white
    assert np.corrcoef(stretched.ravel(), pixels.ravel())[0, 1] > 0.99
    equalized = render(path, preprocessing=Preprocessing(clahe=True))
    assert equalized.std() > pixels.std()
    deep = render(path, preprocessing=Preprocessing(bit_depth=16))
    assert deep.dtype == np.uint16
    np.testing.assert_array_equal(deep, pixels.astype(np.uint16) * 257)


def test_the_pixels_id_tells_preprocessings_apart_and_is_stable():
    assert Preprocessing().pixels_id == Preprocessing().pixels_id
    ids = {Preprocessing(**options).pixels_id for options in
           ({}, {"size": 336}, {"size": 336, "fit": "crop"}, {"clahe": True}, {"window": "percentile"})}
    assert len(ids) == 5
    assert not Preprocessing().changes_pixels and Preprocessing(size=336).changes_pixels
    assert Preprocessing.from_dict({"size": 336, "percentiles": "1,99", "fit": None}).percentiles == (1.0, 99.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 0}, "size 0"),
        ({"fit": "squash"}, "fit 'squash'"),
        ({"bit_depth": 12}, "bit depth 12"),
        ({"window": "lung"}, "window 'lung'"),
        ({"percentiles": "99,1"}, "percentiles"),
        ({"percentiles": "a,b"}, "percentiles 'a,b'"),
        ({"image_format": "jpeg", "bit_depth": 16}, "JPEG files are 8-bit"),
        ({"sizes": 3}, "unknown preprocessing key(s) sizes"),
    ],
)
def test_bad_options_are_one_line_naming_them(options, message):
    with pytest.raises(CurateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Preprocessing.from_dict(options)

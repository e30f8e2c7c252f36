"""curate's PNG writer: what Pillow, OpenCV and curate's reader decode is exactly what was written."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from curate._opencv import opencv
from curate._png_write import encode_gray_png
from curate.imaging import decode_image


@given(
    height=st.integers(1, 40), width=st.integers(1, 40), deep=st.booleans(), seed=st.integers(0, 2**32 - 1),
    level=st.integers(0, 3),
)
def test_every_reader_decodes_exactly_what_was_written(height, width, deep, seed, level):
    rng = np.random.default_rng(seed)
    top = 65535 if deep else 255
    pixels = rng.integers(0, top + 1, (height, width), dtype=np.uint16 if deep else np.uint8)
    data = encode_gray_png(pixels, level)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.mode == ("I;16" if deep else "L") and not image.info.get("transparency")
        np.testing.assert_array_equal(np.asarray(image), pixels)
    cv2 = opencv()
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), pixels)
    if not deep:
        np.testing.assert_array_equal(decode_image(data, "x.png").as_uint8(), pixels)


def test_a_smooth_radiograph_compresses_as_well_as_libpng():
    y, x = np.mgrid[0:336, 0:336]
    pixels = (128 + 60 * np.sin(x / 30) * np.cos(y / 45) + np.random.default_rng(0).normal(0, 3, (336, 336)))
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    cv2 = opencv()
    libpng = len(cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])[1])
    assert len(encode_gray_png(pixels)) <= 1.1 * libpng


@pytest.mark.parametrize("bad", [np.zeros((0, 3), np.uint8), np.zeros((3, 3, 3), np.uint8), np.zeros((3, 3), np.float32)])
def test_only_gray_integer_images_are_written(bad):
    with pytest.raises(ValueError, match="2-D uint8 or uint16"):
        encode_gray_png(bad)

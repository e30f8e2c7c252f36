"""What the App is given to show: plain 8-bit files as they are, everything else as a cached 8-bit rendering."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from curate._io import sha256_file
from curate.browse.media import media_path
from curate.imaging import read_image
from tests.browse._data import twelve_bit
from tests.conftest import knee_like, write_png


def test_a_12_bit_png_is_shown_as_the_scan_reads_it(tmp_path):
    source = write_png(tmp_path / "data" / "knee.png", twelve_bit(1, size=48))
    raw = np.asarray(Image.open(source))
    assert raw.max() < 4096 and (raw >> 8).max() < 16  # shown as its top 8 bits, it is nearly black

    shown, ok = media_path(source, sha256_file(source), None, tmp_path / "media")

    assert ok and Path(shown).is_relative_to(tmp_path / "media") and shown.endswith(".png")
    with Image.open(shown) as image:
        assert image.mode == "L"
        pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels, read_image(source).as_uint8())
    assert (pixels < 16).mean() < 0.1 and pixels.max() > 240


def test_a_plain_8_bit_png_is_linked_and_nothing_is_rendered(tmp_path):
    source = write_png(tmp_path / "knee.png", knee_like(2))
    assert media_path(source, sha256_file(source), None, tmp_path / "media") == (str(source), True)
    assert not (tmp_path / "media").exists()


def test_a_crop_of_a_plain_png_is_rendered(tmp_path):
    source = write_png(tmp_path / "knee.png", knee_like(3))
    shown, ok = media_path(source, sha256_file(source), "4,2,20,30", tmp_path / "media")
    assert ok and shown != str(source)
    np.testing.assert_array_equal(np.asarray(Image.open(shown)), knee_like(3)[2:30, 4:20])


def test_renderings_are_reused_by_content(tmp_path):
    source = write_png(tmp_path / "knee.png", twelve_bit(4))
    digest = sha256_file(source)
    shown, _ = media_path(source, digest, None, tmp_path / "media")
    os.utime(shown, (0, 0))
    moved = tmp_path / "elsewhere.png"
    source.rename(moved)  # the same bytes under another name: the same rendering, not written again
    assert media_path(moved, digest, None, tmp_path / "media") == (shown, True)
    assert os.stat(shown).st_mtime == 0


def test_files_without_a_recorded_hash_do_not_share_a_rendering(tmp_path):
    first = write_png(tmp_path / "a.png", twelve_bit(5))
    second = write_png(tmp_path / "b.png", twelve_bit(6))
    shown = [media_path(p, None, None, tmp_path / "media")[0] for p in (first, second)]
    assert shown[0] != shown[1]
    np.testing.assert_array_equal(np.asarray(Image.open(shown[1])), read_image(second).as_uint8())


def test_a_missing_or_undecodable_file_is_reported_not_raised(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    for path in (tmp_path / "missing.dcm", tmp_path / "broken.png"):
        assert media_path(path, "0" * 64, None, tmp_path / "media") == (str(path), False)

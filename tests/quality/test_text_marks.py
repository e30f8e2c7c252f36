"""Burned-in text: found on a dark frame, never on real knees."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from curate.imaging import read_image
from curate.parallel import Executor
from curate.quality.scan import scan
from curate.quality.text_marks import text_marks
from tests.conftest import write_png
from tests.quality.test_measures import _radiograph
from tests.quality.test_scan import _catalog


def _framed(side: int, text: str, seed: int = 0) -> np.ndarray:
    """A radiograph inside a dark collimated frame, as exported, with ``text`` written on the frame."""
    rng = np.random.default_rng(seed)
    knee = _radiograph(seed=seed, size=side // 2)
    pixels = np.pad(knee, side // 4, constant_values=20).astype(float) + rng.normal(0, 3, (side, side))
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    if text:
        cv2.putText(pixels, text, (side // 20, side // 8), cv2.FONT_HERSHEY_SIMPLEX, side / 700, 255,
                    max(1, round(side / 700)), cv2.LINE_AA)
    return pixels


@pytest.mark.parametrize("side", [448, 1024, 2048])
def test_a_line_of_text_on_the_frame_is_found_at_every_size(side):
    assert text_marks(_framed(side, "DOE^JOHN 19610415")) >= 4
    assert text_marks(_framed(side, "")) < 4


def test_real_knees_show_no_text(shared_data):
    paths = sorted((shared_data / "knee_kl_valtest").rglob("*.png"))[::5]
    assert len(paths) > 400
    assert max(text_marks(read_image(p).as_uint8()) for p in paths) < 4


def test_the_scan_flags_burned_in_text_with_a_reason_and_skips_small_crops(tmp_path):
    write_png(tmp_path / "text.png", _framed(600, "ACC 998877 ST BRIGID"))
    write_png(tmp_path / "clean.png", _framed(600, "", seed=1))
    write_png(tmp_path / "crop.png", _radiograph(seed=2, size=128))
    catalog = _catalog(tmp_path, [("text.png", 1, "p1", "train"), ("clean.png", 1, "p2", "train"),
                                  ("crop.png", 1, "p3", "train")])
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False).set_index("path")
    assert "text_like" in quality.loc["text.png", "flags"].split("|")
    assert "character-like marks in a row (>= 4): burned-in text?" in quality.loc["text.png", "reasons"]
    assert "text_like" not in quality.loc["clean.png", "flags"]
    assert quality.loc["crop.png", "text_marks"] is None or np.isnan(quality.loc["crop.png", "text_marks"])

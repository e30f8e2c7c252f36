from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curate.catalog import make_sample_id
from curate.errors import CurateError
from curate.torch import ManifestDataset
from tests.conftest import write_png


def _rows(tmp_path):
    records = []
    for k, (split, label, repeat) in enumerate([("train", 0, 1), ("train", 1, 3), ("test", 1, 1)]):
        rel = f"{k}.png"
        write_png(tmp_path / rel, np.full((8, 8), 40 * (k + 1), dtype=np.uint8))
        records.append({"sample_id": make_sample_id("t", rel), "path": rel, "label": label, "split": split, "repeat": repeat})
    rows = pd.DataFrame(records)
    rows.attrs["card"] = {"data_root": str(tmp_path)}
    return rows


def test_split_items_are_decoded_images_with_class_indices_and_repeats(tmp_path):
    dataset = ManifestDataset(_rows(tmp_path), "train")
    assert len(dataset) == 4  # the oversampled sample counts three times
    image, target = dataset[1]
    assert image.shape == (8, 8) and image.dtype == np.float32 and target == 1
    assert dataset[0][0].max() == pytest.approx(40 / 255)
    assert len(ManifestDataset(_rows(tmp_path), "train", expand_repeats=False)) == 2


def test_unknown_split_is_one_clear_error(tmp_path):
    with pytest.raises(CurateError, match="no samples in split 'val'; its splits are test, train"):
        ManifestDataset(_rows(tmp_path), "val")


def test_preprocessing_gives_the_pixels_an_export_with_the_same_options_writes(tmp_path):
    from curate.rendering import Preprocessing, render

    rows = _rows(tmp_path)
    write_png(tmp_path / "0.png", (np.arange(8 * 16, dtype=np.uint16).reshape(8, 16) * 30))  # 12-bit in 16
    dataset = ManifestDataset(rows, "train", preprocessing={"size": 12, "fit": "pad"})
    image, _ = dataset[0]
    assert image.shape == (12, 12) and image.dtype == np.float32
    exported = render(tmp_path / "0.png", None, Preprocessing(size=12, fit="pad"))
    np.testing.assert_array_equal(np.rint(image * 255).astype(np.uint8), exported)
    assert image[:3].max() == 0 and image[3:9].max() > 0.8  # padded above, the radiograph's range kept

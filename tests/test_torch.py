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

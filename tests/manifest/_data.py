"""Small data for manifest and export tests: PNGs on disk, a catalog, a selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from curate.catalog import make_sample_id, validate_catalog
from tests.conftest import knee_like, write_png

SPLIT_OF = {"train": 0.6, "val": 0.2, "test": 0.2}


def tiny_dataset(root: Path, n_patients: int = 20) -> pd.DataFrame:
    """One PNG per knee (two knees per patient), labels 0-4; the catalog with ``attrs["data_root"]``."""
    rows = []
    for p in range(n_patients):
        for side in ("L", "R"):
            label = (p + (side == "R")) % 5
            rel = f"{label}/{9000000 + p}{side}.png"
            write_png(root / rel, knee_like(2 * p + (side == "R")))
            rows.append(
                {
                    "sample_id": make_sample_id("test", rel),
                    "path": rel,
                    "label": label,
                    "patient_id": str(9000000 + p),
                    "source": "test",
                    "side": side,
                }
            )
    catalog = validate_catalog(pd.DataFrame(rows))
    catalog.attrs["data_root"] = str(root.resolve())
    return catalog


def hand_selection(catalog: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """A selection made by hand: patients split by number, every sample selected once."""
    patient = catalog["patient_id"].astype(int) - 9000000
    split = np.where(patient % 5 == 3, "val", np.where(patient % 5 == 4, "test", "train"))
    selection = pd.DataFrame(
        {
            "sample_id": catalog["sample_id"],
            "patient_id": catalog["patient_id"],
            "label": catalog["label"],
            "split": pd.array(split, dtype="string"),
            "selected": True,
            "weight": 1.0,
            "repeat": 1,
            "exclusion_reason": pd.array([None] * len(catalog), dtype="string"),
        }
    )
    selection.attrs["selection"] = {"seed": seed, "sampler": {"sampler": "by-hand"}}
    return selection

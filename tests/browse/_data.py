"""A tiny manifest for the browse tests: PNGs (one 16-bit), two DICOMs, a crop, flags, labels and exclusions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from curate.catalog import make_sample_id, validate_catalog
from curate.manifest import build_manifest, write_manifest
from tests.conftest import knee_like, write_dicom, write_png

N_PATIENTS = 10
#: The sample stored as a 16-bit PNG holding 12-bit values (what a browser shows almost black).
SIXTEEN_BIT = (6, "L")


def twelve_bit(seed: int, size: int = 32) -> np.ndarray:
    """A uint16 image with values spread over 0..4095, as 12-bit detectors store them."""
    return np.random.default_rng(seed).integers(0, 4096, (size, size), dtype=np.uint16)


def tiny_store(root: Path) -> tuple[Path, pd.DataFrame]:
    """Write the data under ``root/data`` and its manifest ``browse-tiny`` under ``root/store``.

    Returns the store and the selection (all samples, two of them excluded).
    """
    data = root / "data"
    rows = []
    for p in range(N_PATIENTS):
        for side in ("L", "R"):
            label = (p + (side == "R")) % 5
            k = 2 * p + (side == "R")
            if p < 1:  # DICOM sources: shown through a PNG rendering
                rel = f"{label}/{9000000 + p}{side}.dcm"
                write_dicom(data / rel, knee_like(k), patient_id=str(9000000 + p), sop_uid=f"1.2.3.{k}")
            elif (p, side) == SIXTEEN_BIT:
                rel = f"{label}/{9000000 + p}{side}.png"
                write_png(data / rel, twelve_bit(k))
            else:
                rel = f"{label}/{9000000 + p}{side}.png"
                write_png(data / rel, knee_like(k))
            rows.append({"sample_id": make_sample_id("test", rel), "path": rel, "label": label,
                         "patient_id": str(9000000 + p), "source": "test", "side": side,
                         "crop": "2,2,30,30" if p == 1 and side == "L" else None})
    catalog = validate_catalog(pd.DataFrame(rows))
    catalog.attrs["data_root"] = str(data.resolve())
    ids = catalog["sample_id"]
    patient = catalog["patient_id"].astype(int) - 9000000
    split = np.where(patient % 5 == 3, "val", np.where(patient % 5 == 4, "test", "train"))
    excluded = ids.isin(ids.iloc[[4, 5]])
    selection = pd.DataFrame({
        "sample_id": ids, "patient_id": catalog["patient_id"], "label": catalog["label"],
        "split": pd.array(split, dtype="string"), "selected": ~excluded, "weight": 1.0, "repeat": 1,
        "exclusion_reason": pd.array(np.where(excluded, "blank", None), dtype="string"),
    })
    flags = [""] * len(ids)
    flags[0], flags[2], flags[3] = "blurred|outlier_sharpness", "near_duplicate", "near_duplicate"
    flags[4] = "blank"
    quality = pd.DataFrame({
        "sample_id": ids, "flags": flags,
        "dup_group": pd.array([None, None, "g1", "g1"] + [None] * (len(ids) - 4), dtype="string"),
        "dup_keep": pd.array([None, None, True, False] + [None] * (len(ids) - 4), dtype="boolean"),
    })
    probs = np.full((len(ids), 5), 0.1)
    probs[np.arange(len(ids)), catalog["label"].to_numpy()] = 0.6
    probs[6] = [0.05, 0.05, 0.05, 0.05, 0.8]  # sample 6: the probe suggests 4
    labels = pd.DataFrame({
        "sample_id": ids,
        "suggested_label": probs.argmax(axis=1),
        "label_quality": probs[np.arange(len(ids)), catalog["label"].to_numpy()],
        "is_label_issue": probs.argmax(axis=1) != catalog["label"].to_numpy(),
        **{f"prob_{c}": probs[:, c] for c in range(5)},
    })
    manifest = build_manifest(catalog, selection, name="browse-tiny", quality=quality, labels=labels,
                              created_at="2026-01-01T00:00:00+00:00")
    store = root / "store"
    write_manifest(manifest, store)
    return store, {"catalog": catalog, "selection": selection, "quality": quality, "labels": labels}

"""``csv`` and ``jsonl``: the manifest rows with an absolute ``image`` path, one row per sample.

No image files are written; ``repeat`` and ``weight`` are columns for the trainer's sampler.
``image`` is the file under the export's data root (``--data-root``, else the recorded
one), and every file must be there, as for the formats that place images. These tables
point at the source files, so they carry no preprocessing: ask for one of the image
formats to get rendered pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from curate.errors import CurateError
from curate.export._files import ImagePlacer, label_value

__all__ = ["write_csv", "write_jsonl"]


def _with_image(manifest, placer: ImagePlacer) -> pd.DataFrame:
    rows = manifest.rows.copy()
    rows.insert(1, "image", [str(placer.source(r)) for r in rows[["sample_id", "path"]].to_dict("records")])
    return rows


def _no_preprocessing(placer: ImagePlacer, fmt: str) -> None:
    if placer.preprocessing.changes_pixels:
        raise CurateError(f"{fmt} exports point at the source files and cannot preprocess them; "
                          "use llava, hf-imagefolder or imagefolder for rendered pixels")


def write_csv(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Write ``manifest.csv``."""
    _no_preprocessing(placer, "csv")
    rows = _with_image(manifest, placer)
    rows.to_csv(folder / "manifest.csv", index=False)
    return {"file": "manifest.csv", "rows": len(rows)}


def write_jsonl(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Write ``manifest.jsonl`` (missing values as null)."""
    _no_preprocessing(placer, "jsonl")
    rows = _with_image(manifest, placer)
    with open(folder / "manifest.jsonl", "w", encoding="utf-8") as fh:
        for record in rows.to_dict("records"):
            clean = {k: (None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v)
                     for k, v in record.items()}
            clean["label"] = label_value(clean["label"])
            fh.write(json.dumps(clean, default=_plain) + "\n")
    return {"file": "manifest.jsonl", "rows": len(rows)}


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)

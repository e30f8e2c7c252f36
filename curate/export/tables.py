"""``csv`` and ``jsonl``: the manifest rows with an absolute ``image`` path, one row per sample.

``repeat`` and ``weight`` are columns for the trainer's sampler. ``image`` is what a
trainer opens: the source file under the export's data root (``--data-root``, else the
recorded one) when a plain Pillow reader shows it as it is, else a rendering written
into the export's ``images/`` folder (16-bit files, DICOM, crops, and every image when
preprocessing is asked for). Every source file must be there, as for the other formats.
For a de-identified manifest every image is rendered into ``images/``, ``image`` is
relative to the table and there is no ``path`` or ``sha256`` column.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from curate.export._files import ImagePlacer, label_value

IMAGE_FOLDER = "images"

__all__ = ["write_csv", "write_jsonl"]


def _with_image(manifest, folder: Path, placer: ImagePlacer) -> pd.DataFrame:
    rows = manifest.rows.copy()
    images = folder / IMAGE_FOLDER
    paths = []
    for record in rows.to_dict("records"):
        if placer.conversion(record) is None:
            paths.append(str(placer.source(record)))
        elif placer.private:  # de-identified: no absolute path, relative to the table
            paths.append(f"{IMAGE_FOLDER}/{placer.place(record, images)}")
        else:
            paths.append(str(placer.final_path(images / placer.place(record, images))))
    rows.insert(1, "image", paths)
    # de-identified: no path, and no hash of a source file (which its holder could match)
    return rows.drop(columns=["path", "sha256"], errors="ignore") if placer.private else rows


def write_csv(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Write ``manifest.csv``."""
    rows = _with_image(manifest, folder, placer)
    rows.to_csv(folder / "manifest.csv", index=False)
    return {"file": "manifest.csv", "rows": len(rows)}


def write_jsonl(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Write ``manifest.jsonl`` (missing values as null)."""
    rows = _with_image(manifest, folder, placer)
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

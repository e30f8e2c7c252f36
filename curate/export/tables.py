"""``csv`` and ``jsonl``: the manifest rows with an absolute ``image`` path, one row per sample.

No image files are written; ``repeat`` and ``weight`` are columns for the trainer's sampler.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from curate.export._files import label_value

__all__ = ["write_csv", "write_jsonl"]


def _with_image(manifest) -> pd.DataFrame:
    rows = manifest.rows.copy()
    root = Path(manifest.card["data_root"])
    rows.insert(1, "image", [str(root / p) for p in rows["path"].astype(str)])
    return rows


def write_csv(manifest, folder: Path, placer=None) -> dict:
    """Write ``manifest.csv``."""
    rows = _with_image(manifest)
    rows.to_csv(folder / "manifest.csv", index=False)
    return {"file": "manifest.csv", "rows": len(rows)}


def write_jsonl(manifest, folder: Path, placer=None) -> dict:
    """Write ``manifest.jsonl`` (missing values as null)."""
    rows = _with_image(manifest)
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

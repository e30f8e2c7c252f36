"""Hugging Face ``imagefolder``: ``train/``, ``validation/``, ``test/``, each with its images and ``metadata.jsonl``.

Each ``metadata.jsonl`` line is ``{"file_name", "label", "sample_id", "patient_id",
"weight"}`` with ``file_name`` relative to the ``metadata.jsonl``; the extra columns
become features. A sample with ``repeat`` n has n lines naming the same file.
Load with ``datasets.load_dataset("imagefolder", data_dir=OUTPUT)``.
"""

from __future__ import annotations

import json
from pathlib import Path

from curate.export._files import ImagePlacer, label_value, repeated

__all__ = ["SPLIT_FOLDERS", "write_hf_imagefolder"]

#: The folder of each manifest split (``val`` is ``validation``, the name datasets uses).
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}


def write_hf_imagefolder(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Write one folder per split with its images and ``metadata.jsonl``; return what was written."""
    out = {}
    rows = repeated(manifest.rows)
    for split, part in rows.groupby(rows["split"].astype(str), sort=False):
        target = folder / SPLIT_FOLDERS.get(split, split)
        target.mkdir(parents=True, exist_ok=True)
        lines = []
        for record in part.to_dict("records"):
            lines.append(
                json.dumps(
                    {
                        "file_name": placer.place(record, target),
                        "label": label_value(record["label"]),
                        "sample_id": str(record["sample_id"]),
                        "patient_id": None if record["patient_id"] is None else str(record["patient_id"]),
                        "weight": float(record["weight"]),
                    }
                )
            )
        (target / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        out[split] = {"folder": target.name, "lines": len(lines)}
    return {"splits": out}

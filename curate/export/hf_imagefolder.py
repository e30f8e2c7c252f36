"""Hugging Face ``imagefolder``: a folder per split with images and ``metadata.parquet``, and ``README.md``.

Load with ``datasets.load_dataset("imagefolder", data_dir=OUTPUT)`` (or
``load_dataset(OUTPUT)``, which also reads the ``README.md`` configs). Each split's
``metadata.parquet`` has the columns ``file_name`` (relative to it), ``label``,
``sample_id``, ``patient_id`` and ``weight``; a sample with ``repeat`` n has n rows
naming the same file.

``label`` loads as a ``ClassLabel`` whose names are the manifest's class names
(:func:`~curate.export.dataset_card.manifest_classes`), the same in every split; the
record's ``class_to_idx`` maps each name to its index. Why Parquet: datasets (checked
with 5.2) types a ``label`` read from ``metadata.jsonl``/``.csv`` as a plain integer,
ignores the features of ``README.md`` for folder datasets, and drops labels taken from
folder names as soon as any metadata file exists. The one typing it honours is the
``huggingface`` features entry of a Parquet schema, which is how datasets itself
writes Parquet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate.export._files import ImagePlacer, repeated
from curate.export.dataset_card import hf_dataset_card, manifest_classes
from curate.select._labels import label_text

__all__ = ["SPLIT_FOLDERS", "METADATA_FILE", "CARD_FILE", "COLUMNS", "write_hf_imagefolder", "split_folder"]

#: The folder of each manifest split (``val`` is ``validation``, the name datasets uses).
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}
METADATA_FILE = "metadata.parquet"
CARD_FILE = "README.md"
#: Metadata columns besides ``file_name`` and ``label``: manifest column -> datasets dtype.
COLUMNS: dict[str, str] = {"sample_id": "string", "patient_id": "string", "weight": "float64"}
_ARROW = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64()}


def split_folder(split: str) -> str:
    """The export folder (and datasets split name) of a manifest split."""
    return SPLIT_FOLDERS.get(split, split)


def _features(classes: Sequence[str], columns: Mapping[str, str]) -> dict:
    """The features as ``datasets.Features.to_dict()`` writes them (no import of datasets needed)."""
    return {
        "file_name": {"dtype": "string", "_type": "Value"},
        "label": {"names": list(classes), "_type": "ClassLabel"},
        **{name: {"dtype": dtype, "_type": "Value"} for name, dtype in columns.items()},
    }


def _schema(classes: Sequence[str], columns: Mapping[str, str]) -> pa.Schema:
    fields = [("file_name", pa.string()), ("label", pa.int64())]
    fields += [(name, _ARROW[dtype]) for name, dtype in columns.items()]
    features = json.dumps({"info": {"features": _features(classes, columns)}})
    return pa.schema(fields, metadata={"huggingface": features})


def _metadata_table(part: pd.DataFrame, file_names: list[str], class_to_idx: Mapping[str, int]) -> dict[str, list]:
    labels = label_text(part["label"])
    data = {
        "file_name": file_names,
        # A missing label stays missing (null), never a made-up class.
        "label": [None if pd.isna(v) else class_to_idx[v] for v in labels],
    }
    for name, dtype in COLUMNS.items():
        values = part[name].astype("string" if dtype == "string" else dtype)
        data[name] = [None if pd.isna(v) else v for v in values]
    return data


def write_hf_imagefolder(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Write one folder per split with its images and ``metadata.parquet``, and the ``README.md`` card.

    Parameters
    ----------
    manifest : Manifest
        The manifest to export.
    folder : Path
        The (temporary) export folder.
    placer : ImagePlacer
        Puts each image into its split folder; its files are never read here.

    Returns
    -------
    dict
        ``splits`` (folder and rows of each), ``class_to_idx`` (class name -> label
        index), ``metadata_file`` and ``card``, for ``curate_export.json``.
    """
    classes = manifest_classes(manifest)
    class_to_idx = {name: i for i, name in enumerate(classes)}
    schema = _schema(classes, COLUMNS)
    rows = repeated(manifest.rows)
    splits = {}
    for split, part in rows.groupby(rows["split"].astype(str), sort=False):
        target = folder / split_folder(split)
        target.mkdir(parents=True, exist_ok=True)
        names = [placer.place(record, target) for record in part.to_dict("records")]
        table = pa.Table.from_pydict(_metadata_table(part, names, class_to_idx), schema=schema)
        pq.write_table(table, target / METADATA_FILE)
        splits[split] = {"folder": target.name, "lines": len(part)}
    card = hf_dataset_card(
        manifest, split_folders={s: v["folder"] for s, v in splits.items()}, classes=classes, columns=COLUMNS
    )
    (folder / CARD_FILE).write_text(card, encoding="utf-8")
    return {"splits": splits, "class_to_idx": class_to_idx, "metadata_file": METADATA_FILE, "card": CARD_FILE}

"""Croissant 1.0: ``croissant.json`` (JSON-LD) describing ``images/`` and ``samples.parquet``.

The export holds one image per sample, ``images/<sample_id>.<ext>``, and
``samples.parquet`` with ``sample_id, file_name, label, split, patient_id, weight,
repeat`` (one row per sample; ``repeat`` and ``weight`` are for the trainer's
sampler). Parquet rather than CSV because readers type CSV columns by guessing:
a patient id ``00123`` would come back as the number 123.

``croissant.json`` lists every file as a ``FileObject`` with its sha256, and three
record sets: ``classes`` (index and name of every class, the manifest's class
names), ``splits`` and ``samples``, whose ``image`` comes from the image files
joined to ``samples.parquet`` on the file name. Read it with
``mlcroissant.Dataset(jsonld="croissant.json").records("samples")``.

Two steps, because images may be written after the writer returns:
:func:`write_croissant` places the images and writes ``samples.parquet``;
:func:`finish_croissant`, called once every image exists, hashes the files and
writes ``croissant.json``.

Defaults where the manifest says nothing: the license is ``"unknown"`` and no
``citeAs`` is written (mlcroissant then warns that it is recommended); the
version is ``0.0.0+<version id>``, since Croissant wants SemVer and a manifest
version is a content hash with no order (SemVer build metadata carries it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from curate._io import sha256_file
from curate.errors import CurateError
from curate.export._files import ImagePlacer
from curate.export.dataset_card import (
    UNKNOWN_LICENSE,
    citation_of,
    description_of,
    license_of,
    manifest_classes,
    provenance,
)

__all__ = [
    "CROISSANT_FILE",
    "SAMPLES_FILE",
    "IMAGE_FOLDER",
    "write_croissant",
    "finish_croissant",
    "croissant_metadata",
    "media_type",
]

CROISSANT_FILE = "croissant.json"
SAMPLES_FILE = "samples.parquet"
IMAGE_FOLDER = "images"
#: Columns of ``samples.parquet`` taken from the manifest rows, in order (``file_name`` follows ``sample_id``).
COLUMNS = ("sample_id", "label", "split", "patient_id", "weight", "repeat")
_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
}
#: The JSON-LD context of Croissant 1.0, as its reference implementation writes it.
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def media_type(file_name: str) -> str:
    """The MIME type of an image file, from its extension."""
    suffix = Path(file_name).suffix.lower()
    if suffix not in _MEDIA_TYPES:
        raise CurateError(f"{file_name}: no Croissant encoding format for {suffix or 'a file without extension'}")
    return _MEDIA_TYPES[suffix]


def write_croissant(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Place one image per sample under ``images/`` and write ``samples.parquet``.

    ``croissant.json`` is written by :func:`finish_croissant` once the images exist.

    Parameters
    ----------
    manifest : Manifest
        The manifest to export.
    folder : Path
        The (temporary) export folder.
    placer : ImagePlacer
        Puts each image into ``images/``; its files are not read here.

    Returns
    -------
    dict
        ``metadata``, ``samples_file``, ``image_folder``, ``samples`` and
        ``class_to_idx``, for ``curate_export.json`` and :func:`finish_croissant`.
    """
    rows = manifest.rows
    images = folder / IMAGE_FOLDER
    images.mkdir(parents=True, exist_ok=True)
    table = rows.loc[:, list(COLUMNS)].copy()
    table.insert(1, "file_name", [placer.place(record, images) for record in rows.to_dict("records")])
    # Ids and labels as text: a label Int64 3 becomes "3", the class name ``classes`` lists.
    for name in ("sample_id", "label", "split", "patient_id"):
        table[name] = table[name].astype("string")
    table.to_parquet(folder / SAMPLES_FILE, index=False)
    classes = manifest_classes(manifest)
    return {
        "metadata": CROISSANT_FILE,
        "samples_file": SAMPLES_FILE,
        "image_folder": IMAGE_FOLDER,
        "samples": len(table),
        "class_to_idx": {name: i for i, name in enumerate(classes)},
    }


def finish_croissant(manifest, folder: Path, details: dict) -> dict:
    """Hash the written files and write ``croissant.json``; return ``details`` for the record.

    Parameters
    ----------
    manifest : Manifest
        The exported manifest.
    folder : Path
        The export folder, every image already in place.
    details : dict
        What :func:`write_croissant` returned.

    Raises
    ------
    CurateError
        When an image listed in ``samples.parquet`` is missing.
    """
    names = pd.read_parquet(folder / SAMPLES_FILE, columns=["file_name"])["file_name"]
    paths = [f"{IMAGE_FOLDER}/{name}" for name in names]
    missing = [p for p in paths if not (folder / p).is_file()]
    if missing:
        raise CurateError(f"{len(missing)} image(s) of the Croissant export were not written, e.g. {missing[0]}")
    # Read through symlinks: the sha256 is of the bytes a reader of the export gets.
    files = {p: sha256_file(folder / p) for p in [SAMPLES_FILE, *paths]}
    classes = sorted(details["class_to_idx"], key=details["class_to_idx"].get)
    metadata = croissant_metadata(manifest, files, classes=classes)
    (folder / CROISSANT_FILE).write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")
    return {**details, "files_hashed": len(files)}


def _file_object(path: str, sha256: str, encoding: str) -> dict:
    return {"@type": "cr:FileObject", "@id": path, "name": path, "contentUrl": path,
            "encodingFormat": encoding, "sha256": sha256}


def _distribution(files: Mapping[str, str]) -> list[dict]:
    """``samples.parquet``, the image file set the records read, then every image file with its sha256."""
    images = sorted(p for p in files if p != SAMPLES_FILE)
    suffixes = sorted({Path(p).suffix.lower() for p in images})
    # mlcroissant decodes with the first format listed; PNG first, the format of every converted image.
    formats = sorted({media_type(p) for p in images}, key=lambda m: (m != "image/png", m))
    image_set = {
        "@type": "cr:FileSet",
        "@id": "image-files",
        "name": "image-files",
        "description": "The images, one per sample, named <sample_id>.<ext>.",
        "encodingFormat": formats,
        "includes": [f"{IMAGE_FOLDER}/*{s}" for s in suffixes],
    }
    return [
        _file_object(SAMPLES_FILE, files[SAMPLES_FILE], "application/x-parquet"),
        image_set,
        *(_file_object(p, files[p], media_type(p)) for p in images),
    ]


def _field(record_set: str, name: str, data_type, description: str, source: dict | None = None, **extra) -> dict:
    field = {"@type": "cr:Field", "@id": f"{record_set}/{name}", "name": name, "description": description,
             "dataType": data_type}
    if source is not None:
        field["source"] = source
    return {**field, **extra}


def _column(name: str) -> dict:
    return {"fileObject": {"@id": SAMPLES_FILE}, "extract": {"column": name}}


def _images(file_property: str) -> dict:
    return {"fileSet": {"@id": "image-files"}, "extract": {"fileProperty": file_property}}


def _inline_record_set(name: str, fields: list[dict], data: list[dict], **extra) -> dict:
    return {"@type": "cr:RecordSet", "@id": name, "name": name, **extra, "key": {"@id": fields[0]["@id"]},
            "field": fields, "data": data}


def _record_sets(classes: Sequence[str], splits: Sequence[str]) -> list[dict]:
    class_set = _inline_record_set(
        "classes",
        [_field("classes", "name", "sc:Text", "The class name: the manifest's label."),
         _field("classes", "index", "sc:Integer", "The class index (as in the hf-imagefolder ClassLabel).")],
        [{"classes/name": name, "classes/index": i} for i, name in enumerate(classes)],
        description="The classes, in the manifest's reading order.",
    )
    split_set = _inline_record_set(
        "splits", [_field("splits", "name", "sc:Text", "The split name.")],
        [{"splits/name": s} for s in splits], dataType="cr:Split", description="The manifest's splits.",
    )
    samples = {
        "@type": "cr:RecordSet",
        "@id": "samples",
        "name": "samples",
        "description": "One record per sample of the manifest.",
        "key": {"@id": "samples/sample_id"},
        "field": [
            _field("samples", "sample_id", "sc:Text", "Stable id of the sample.", _column("sample_id")),
            _field("samples", "image", "sc:ImageObject", "The image.", _images("content")),
            _field("samples", "file_name", "sc:Text", "File name of the image under images/.",
                   _images("filename"), references=_column("file_name")),
            _field("samples", "label", "sc:Text", f"The class: one of {', '.join(classes)}.", _column("label"),
                   references={"field": {"@id": "classes/name"}}),
            _field("samples", "split", ["sc:Text", "cr:Split"], "The split.", _column("split"),
                   references={"field": {"@id": "splits/name"}}),
            _field("samples", "patient_id", "sc:Text", "The patient (splits never share one).", _column("patient_id")),
            _field("samples", "weight", "sc:Float", "Training weight of the sample.", _column("weight")),
            _field("samples", "repeat", "sc:Integer", "How many times the sampler takes the sample.",
                   _column("repeat")),
        ],
    }
    return [class_set, split_set, samples]


def _description(card: Mapping) -> str:
    made = "; ".join(f"{key}: {value}" for key, value in provenance(card).items())
    return f"{description_of(card)} Provenance: {made}."


def croissant_metadata(manifest, files: Mapping[str, str], *, classes: Sequence[str]) -> dict:
    """The Croissant 1.0 JSON-LD of an export.

    Parameters
    ----------
    manifest : Manifest
        The exported manifest (name, version, card).
    files : mapping
        Path relative to the export (``samples.parquet`` and every image) -> sha256.
    classes : sequence of str
        The class names, index ``i`` naming ``classes[i]``.

    Returns
    -------
    dict
        The document to write as ``croissant.json``.
    """
    card = manifest.card
    splits = [s for s in (card.get("counts") or {})] or sorted(set(manifest.rows["split"].dropna().astype(str)))
    metadata = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": manifest.name,
        "description": _description(card),
        "version": f"0.0.0+{manifest.version}",
        "datePublished": card.get("created_at"),
        "license": license_of(card) or UNKNOWN_LICENSE,
        "citeAs": citation_of(card),
        "distribution": _distribution(files),
        "recordSet": _record_sets(classes, splits),
    }
    return {key: value for key, value in metadata.items() if value is not None}

"""A folder tree of DICOM files, read header-only, with labels from a table or a tag."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.imaging import DecodeFailure, read_dicom_header
from curate.loaders.base import Loader, LoadResult, Option, dicom_fields, problems_table, require_dir
from curate.tables import read_table, require_columns

__all__ = ["DicomLoader"]

_KEYS = {"filename": "filename", "sop_uid": "sop_instance_uid", "patient_id": "dicom_patient_id"}


class DicomLoader(Loader):
    """Read every DICOM file below a folder (by its ``DICM`` magic or ``.dcm`` extension).

    Only headers are read, so ingest is fast. Labels come from a table joined by
    file name, SOP Instance UID or PatientID, or from a DICOM tag; without either
    the catalog is unlabeled. Files whose header cannot be read stay in the catalog
    (the scan reports why) and are listed in the problems.
    """

    name = "dicom"
    summary = "a folder tree of DICOM files (header-only), labels from a table or a tag"
    options = (
        Option("labels", "table (CSV/TSV/Parquet) holding the labels", type=Path),
        Option("key", "how label rows find their file", default="filename", choices=tuple(_KEYS)),
        Option("key_col", "column of the labels table holding the key (default: same name as key)"),
        Option("label_col", "column of the labels table holding the label", default="label"),
        Option("label_tag", "DICOM keyword whose value is the label, e.g. BodyPartExamined"),
        Option("source_name", "name recorded in the catalog's source column", default="dicom"),
    )

    def _load(self, source, *, labels, key, key_col, label_col, label_tag, source_name):
        require_dir(source)
        if labels is not None and label_tag is not None:
            raise LoaderError("give either labels (a table) or label_tag, not both")
        files = _dicom_files(source)
        if not files:
            raise LoaderError(f"{source}: no DICOM files found (looked for a DICM preamble or a .dcm extension)")
        rows, problems = [], []
        for path in files:
            relpath = path.relative_to(source).as_posix()
            row = {"sample_id": make_sample_id(source_name, relpath), "path": relpath, "source": source_name}
            try:
                header = read_dicom_header(path)
            except DecodeFailure as failure:
                problems.append(("unreadable_header", relpath, f"{failure.reason.value}: {failure.detail}"))
                header = {}
            row.update(dicom_fields(header))
            row["patient_id"] = header.get("dicom_patient_id")
            row["sop_instance_uid"] = header.get("sop_instance_uid")
            row["filename"] = path.name
            row["label"] = _tag_value(path, label_tag) if label_tag and header else None
            rows.append(row)
        catalog = pd.DataFrame(rows)
        if labels is not None:
            catalog, label_problems = _join_labels(catalog, Path(labels), _KEYS[key], key_col or key, label_col)
            problems += label_problems
        for relpath in catalog.loc[catalog["patient_id"].isna(), "path"]:
            problems.append(("missing_patient_id", relpath, "no PatientID in the header"))
        catalog = catalog.drop(columns=["filename"])
        return LoadResult(catalog, source.resolve(), problems_table(problems))


def _dicom_files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith("."):
                continue
            if path.suffix.lower() in (".dcm", ".dicom") or _has_magic(path):
                found.append(path)
    return sorted(found)


def _has_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _tag_value(path: Path, keyword: str):
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=[keyword])
    value = ds.get(keyword)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _join_labels(catalog, labels_path, catalog_key, key_col, label_col):
    table = read_table(labels_path)
    require_columns(table, [key_col, label_col], labels_path)
    table = table[[key_col, label_col]].dropna(subset=[key_col])
    repeated = table[key_col].duplicated(keep=False)
    if repeated.any():
        keys = ", ".join(sorted(set(table.loc[repeated, key_col]))[:5])
        raise LoaderError(f"{labels_path}: key column '{key_col}' repeats: {keys}")
    mapping = table.set_index(key_col)[label_col]
    catalog["label"] = catalog[catalog_key].map(mapping)
    problems = [
        ("image_without_label", p, f"no row in {labels_path.name} for {catalog_key} {k!r}")
        for p, k in zip(catalog.loc[catalog["label"].isna(), "path"], catalog.loc[catalog["label"].isna(), catalog_key])
    ]
    unused = sorted(set(mapping.index) - set(catalog[catalog_key].dropna()))
    problems += [("label_without_image", f"{labels_path.name}: {k}", f"no DICOM file with {catalog_key} {k!r}") for k in unused]
    return catalog, problems

"""RSNA Pneumonia Detection Challenge: box table, class table and ``stage_2_train_images/*.dcm``.

* ``stage_2_train_labels.csv``: ``patientId``, ``x``, ``y``, ``width``, ``height``,
  ``Target``; one row per lung-opacity box (``Target`` 1), or one row without box
  (``Target`` 0) for an image without opacity.
* ``stage_2_detailed_class_info.csv`` (optional): ``patientId``, ``class`` in
  ``Lung Opacity``, ``Normal``, ``No Lung Opacity / Not Normal``.
* ``stage_2_train_images/<patientId>.dcm``: the images; only headers are read
  (``view`` from ViewPosition, ``rows``, ``columns``, ``modality`` ...).

Despite its name, ``patientId`` identifies an image: the challenge has one image per
patient, and the DICOM ``PatientID`` holds the same value (checked). It is the
catalog's ``patient_id``.

One catalog row per image: ``n_boxes`` and ``boxes`` (JSON text
``[[x, y, width, height], ...]`` in pixels, ``[]`` without box), ``target`` and
``rsna_class``. ``findings`` is ``Lung Opacity`` for ``Target`` 1; for ``Target`` 0 it
is ``No Finding`` (class ``Normal``) or ``No Lung Opacity / Not Normal``, and
``No Lung Opacity`` when the class table is absent (the image may not be normal).

The stage-1 names (``stage_1_train_labels.csv``, ``stage_1_train_images/``) are
read too; SOURCE may also be the labels CSV, the images then being the folder named
like it (``..._labels.csv`` -> ``..._images/``).

Problem kinds
-------------
``missing_images``
    (with ``allow_missing_images``) one row counting the images not on disk.
``image_without_row``, ``class_without_row``
    a DICOM file, or a class row, whose patientId the labels table lacks.
``bad_target``, ``bad_box``, ``conflicting_target``
    a ``Target`` other than 0/1 (row ignored), a box with missing or non-numeric
    values or on a ``Target`` 0 row (box ignored), an image with rows of both targets
    (``Target`` 1 is used).
``unknown_class``, ``conflicting_class``, ``class_target_mismatch``
    a class not among the three, two classes for one image (the first is used), a
    class that contradicts ``Target`` (``Target`` is used).
``not_a_regular_file``, ``broken_link``
    an entry of the image folder that is a pipe, socket, device or a symbolic link
    to nothing (never opened; a listed one also counts as a missing image).
``unreadable_header``, ``patient_id_mismatch``
    a DICOM whose header cannot be read (cataloged without header fields), or whose
    ``PatientID`` differs from its patientId.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.imaging import DecodeFailure, read_dicom_header
from curate.loaders._multilabel import ALLOW_MISSING_IMAGES, NO_FINDING, check_images, normalize_view
from curate.loaders.base import Loader, LoadResult, Option, dicom_fields, file_problem, problems_table
from curate.tables import read_table, require_columns

__all__ = ["RSNAPneumoniaLoader"]

_LABELS = ("stage_2_train_labels.csv", "stage_1_train_labels.csv")
_BOX = ("x", "y", "width", "height")
LUNG_OPACITY = "Lung Opacity"
NOT_NORMAL = "No Lung Opacity / Not Normal"
NO_OPACITY = "No Lung Opacity"
_CLASS_FINDINGS = {LUNG_OPACITY: LUNG_OPACITY, "Normal": NO_FINDING, NOT_NORMAL: NOT_NORMAL}


class RSNAPneumoniaLoader(Loader):
    """Read the RSNA Pneumonia Detection Challenge training data into a catalog.

    SOURCE is the challenge folder (holding ``stage_2_train_labels.csv``) or the
    labels CSV; the data root is the CSV's folder. One row per image with its boxes.
    """

    name = "rsna-pneumonia"
    summary = "RSNA Pneumonia: stage_2_train_labels.csv (+ detailed class info), stage_2_train_images/*.dcm"
    options = (
        ALLOW_MISSING_IMAGES,
        Option("source_name", "name recorded in the catalog's source column", default="rsna-pneumonia"),
    )

    def _load(self, source: Path, *, allow_missing_images: bool, source_name: str) -> LoadResult:
        labels_path = _find_labels(source)
        root = labels_path.parent.resolve()
        images_dir = labels_path.name.replace("_labels.csv", "_images")
        class_path = labels_path.with_name(labels_path.name.replace("train_labels", "detailed_class_info"))
        problems: list[tuple[str, str, str]] = []

        images = _images(labels_path, problems)
        classes = _classes(class_path, set(images.index), problems) if class_path.is_file() else None
        catalog = images.reset_index()
        catalog["path"] = (images_dir + "/" + catalog["patient_id"] + ".dcm").astype("string")
        catalog.insert(0, "sample_id", catalog["path"].map(lambda p: make_sample_id(source_name, p)))
        catalog["source"] = source_name
        catalog["rsna_class"] = catalog["patient_id"].map(classes) if classes is not None else pd.NA
        catalog["findings"] = _findings(catalog, problems)
        catalog["label"] = catalog["findings"]

        exists = catalog["path"].map(lambda p: (root / p).is_file())
        problems += check_images(catalog["path"], root, labels_path, allow_missing=allow_missing_images, exists=exists)
        problems += _unlisted_files(root / images_dir, root, set(catalog["patient_id"]), labels_path.name)
        headers = [
            _header(root / path, pid, problems) if ok else {}
            for path, pid, ok in zip(catalog["path"], catalog["patient_id"], exists)
        ]
        fields = pd.DataFrame([dicom_fields(h) for h in headers], index=catalog.index)
        fields["view_raw"] = fields["view"]
        fields["view"] = fields["view"].map(normalize_view)
        catalog = pd.concat([catalog, fields], axis=1)
        return LoadResult(catalog, root, problems_table(problems))


def _find_labels(source: Path) -> Path:
    if source.is_file():
        return source
    for name in _LABELS:
        if (source / name).is_file():
            return source / name
    raise LoaderError(f"{source}: no {' or '.join(_LABELS)} in this folder")


def _images(path: Path, problems: list) -> pd.DataFrame:
    """One row per patientId (in the table's order): target, n_boxes, boxes."""
    table = read_table(path)
    require_columns(table, ["patientId", *_BOX, "Target"], path)
    table["patientId"] = table["patientId"].str.strip()
    table = table.dropna(subset=["patientId"])
    target = pd.to_numeric(table["Target"], errors="coerce")
    bad = ~target.isin([0, 1])
    for pid, value in zip(table.loc[bad, "patientId"], table.loc[bad, "Target"]):
        problems.append(("bad_target", pid, f"Target {value!r} in {path.name} is not 0 or 1; row ignored"))
    table, target = table[~bad], target[~bad].astype(int)
    if table.empty:
        raise LoaderError(f"{path}: no row with Target 0 or 1")
    boxes = table[list(_BOX)].apply(pd.to_numeric, errors="coerce")
    has_box = table[list(_BOX)].notna().any(axis=1)
    complete = boxes.notna().all(axis=1)
    for pid in table.loc[(target == 1) & ~complete, "patientId"]:
        detail = f"a Target 1 row of {path.name} has no complete x, y, width, height; box ignored"
        problems.append(("bad_box", pid, detail))
    for pid in table.loc[(target == 0) & has_box, "patientId"]:
        problems.append(("bad_box", pid, f"a Target 0 row of {path.name} has a box; box ignored"))
    usable = ((target == 1) & complete).to_numpy()
    # One pass over the rows, not a groupby: 30,000 small groups are slow in pandas.
    found: dict[str, dict] = {}
    for pid, value, ok, box in zip(table["patientId"], target, usable, boxes.itertuples(index=False)):
        entry = found.setdefault(pid, {"targets": set(), "boxes": []})
        entry["targets"].add(int(value))
        if ok:
            entry["boxes"].append([_number(v) for v in box])
    rows = []
    for pid, entry in found.items():
        if len(entry["targets"]) > 1:
            problems.append(("conflicting_target", pid, "rows with Target 0 and 1; Target 1 is used"))
        rows.append(
            {
                "patient_id": pid,
                "target": max(entry["targets"]),
                "n_boxes": len(entry["boxes"]),
                "boxes": json.dumps(entry["boxes"]),
            }
        )
    images = pd.DataFrame(rows).set_index("patient_id")
    images["target"] = images["target"].astype("Int64")
    images["n_boxes"] = images["n_boxes"].astype("Int64")
    return images


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _classes(path: Path, known: set[str], problems: list) -> pd.Series:
    table = read_table(path)
    require_columns(table, ["patientId", "class"], path)
    table["patientId"] = table["patientId"].str.strip()
    table["class"] = table["class"].str.strip()
    table = table.dropna(subset=["patientId"]).drop_duplicates()  # the file repeats a class once per box
    unknown = ~table["class"].isin(set(_CLASS_FINDINGS))
    for pid, value in zip(table.loc[unknown, "patientId"], table.loc[unknown, "class"]):
        detail = f"class {value!r} in {path.name} is not one of {', '.join(_CLASS_FINDINGS)}"
        problems.append(("unknown_class", pid, detail))
    table = table[~unknown]
    repeated = table["patientId"].duplicated()
    for pid in table.loc[repeated, "patientId"]:
        problems.append(("conflicting_class", pid, f"several classes in {path.name}; the first is used"))
    table = table[~repeated]
    for pid in sorted(set(table["patientId"]) - known):
        problems.append(("class_without_row", pid, f"in {path.name} but not in the labels table"))
    return table.set_index("patientId")["class"]


def _findings(catalog: pd.DataFrame, problems: list) -> pd.Series:
    out = []
    for pid, target, cls in zip(catalog["patient_id"], catalog["target"], catalog["rsna_class"]):
        if pd.isna(cls):
            out.append(LUNG_OPACITY if target == 1 else NO_OPACITY)
            continue
        if (cls == LUNG_OPACITY) != (target == 1):
            problems.append(("class_target_mismatch", pid, f"class {cls!r} but Target {target}; Target is used"))
            out.append(LUNG_OPACITY if target == 1 else NO_OPACITY)
            continue
        out.append(_CLASS_FINDINGS[cls])
    return pd.Series(out, index=catalog.index, dtype="string")


def _unlisted_files(folder: Path, root: Path, known: set[str], table_name: str) -> list[tuple[str, str, str]]:
    """DICOM files no row lists, and the entries of the image folder that are not files (never opened)."""
    if not folder.is_dir():
        return []
    problems = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith(".") or entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            relpath = path.relative_to(root).as_posix()
            # The listing types plain files for free: only links and special files cost a stat.
            problem = None if entry.is_file(follow_symlinks=False) else file_problem(path, relpath)
            if problem is not None:
                problems.append(problem)
            elif path.suffix == ".dcm" and path.stem not in known:
                problems.append(("image_without_row", relpath, f"no row in {table_name}"))
    return problems


def _header(path: Path, patient_id: str, problems: list) -> dict:
    relpath = f"{path.parent.name}/{path.name}"
    try:
        header = read_dicom_header(path)
    except DecodeFailure as failure:
        problems.append(("unreadable_header", relpath, f"{failure.reason.value}: {failure.detail}"))
        return {}
    if header.get("dicom_patient_id") not in (None, patient_id):
        problems.append(
            ("patient_id_mismatch", relpath, f"DICOM PatientID {header['dicom_patient_id']} differs; patientId is used")
        )
    return header

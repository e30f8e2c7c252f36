"""MIMIC-CXR-JPG: the metadata, label and split tables joined to ``files/p../p<subject>/s<study>/``.

Three tables (``.csv`` or ``.csv.gz``) in the dataset folder:

* ``mimic-cxr-2.0.0-metadata.csv``: one row per image, ``dicom_id``, ``subject_id``,
  ``study_id``, ``ViewPosition`` and optionally ``Rows``, ``Columns``, ``StudyDate``,
  ``StudyTime``;
* ``mimic-cxr-2.0.0-chexpert.csv`` (or ``-negbio.csv``, option ``labeler``): one row
  per study, ``subject_id``, ``study_id`` and the 14 observations as 1 / 0 / -1 / blank;
* ``mimic-cxr-2.0.0-split.csv`` (optional): ``dicom_id``, ``split`` in
  ``train``/``validate``/``test`` (``validate`` becomes ``val``).

The image of a row is ``files/p<first 2 digits of subject_id>/p<subject_id>/s<study_id>/<dicom_id>.jpg``.
Labels are per study, so every image of a study gets its study's findings.
``patient_id`` is ``subject_id``; ``visit`` is ``StudyDate`` and ``StudyTime`` as
``YYYYMMDDTHHMMSS`` (sortable; the dates are shifted per patient by MIMIC, so only
their order within a patient means something), empty without those columns.

Problem kinds
-------------
``missing_images``
    (with ``allow_missing_images``) one row counting the images not on disk.
``image_without_labels``, ``labels_without_image``
    an image whose study has no label row (cataloged unlabeled), a label row whose
    study has no image in the metadata.
``duplicate_row``
    a ``dicom_id`` or a (subject, study) label row listed again (the first is used).
``no_official_split``, ``bad_split``
    an image missing from the split table, or with a split other than train/validate/test.
``missing_id``
    a metadata row without ``dicom_id``, ``subject_id`` or ``study_id`` (not cataloged).
``bad_observation_value``
    an observation cell other than 1, 0, -1 or blank (read as blank).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.loaders._multilabel import (
    ALLOW_MISSING_IMAGES,
    CHEXPERT_OBSERVATIONS,
    check_images,
    clean_ids,
    find_table,
    normalize_views,
    observation_columns,
)
from curate.loaders.base import Loader, LoadResult, Option, problems_table, require_dir
from curate.tables import read_table, require_columns

__all__ = ["MimicCXRLoader"]

_PREFIX = "mimic-cxr-2.0.0"
_KEYS = ["subject_id", "study_id"]
_SPLITS = {"train": "train", "validate": "val", "val": "val", "test": "test"}


class MimicCXRLoader(Loader):
    """Read MIMIC-CXR-JPG (metadata, CheXpert or NegBio labels, split) into a catalog.

    SOURCE is the dataset folder holding the ``mimic-cxr-2.0.0-*.csv[.gz]`` tables
    and ``files/``. One catalog row per image; ``findings``/``findings_uncertain``
    and ``finding_<name>`` come from the study's label row, ``view`` from
    ``ViewPosition`` (raw value in ``view_raw``).
    """

    name = "mimic-cxr"
    summary = "MIMIC-CXR-JPG: metadata + chexpert/negbio labels + split tables, files/p../p*/s*/*.jpg"
    options = (
        ALLOW_MISSING_IMAGES,
        Option("labeler", "which label table to read", default="chexpert", choices=("chexpert", "negbio")),
        Option("source_name", "name recorded in the catalog's source column", default="mimic-cxr"),
    )

    def _load(self, source: Path, *, allow_missing_images: bool, labeler: str, source_name: str) -> LoadResult:
        require_dir(source)
        root = source.resolve()
        meta_path = _required_table(source, "metadata")
        labels_path = _required_table(source, labeler)
        split_path = find_table(source, f"{_PREFIX}-split.csv")
        problems: list[tuple[str, str, str]] = []

        images = _read_metadata(meta_path, problems)
        images["path"] = _image_paths(images)
        labels = _read_labels(labels_path, problems)
        catalog = _join_labels(images, labels, labels_path.name, problems)

        catalog.insert(0, "sample_id", catalog["path"].map(lambda p: make_sample_id(source_name, p)))
        catalog["source"] = source_name
        catalog["patient_id"] = catalog["subject_id"]
        catalog["label"] = catalog["findings"]
        if split_path is not None:
            catalog["official_split"] = _official_split(catalog, split_path, problems)
        problems += check_images(catalog["path"], root, meta_path, allow_missing=allow_missing_images)
        return LoadResult(catalog.reset_index(drop=True), root, problems_table(problems))


def _required_table(source: Path, kind: str) -> Path:
    path = find_table(source, f"{_PREFIX}-{kind}.csv")
    if path is None:
        raise LoaderError(f"{source}: no {_PREFIX}-{kind}.csv (or .csv.gz) in this folder")
    return path


def _read_metadata(path: Path, problems: list) -> pd.DataFrame:
    meta = read_table(path)
    require_columns(meta, ["dicom_id", *_KEYS, "ViewPosition"], path)
    for column in ("dicom_id", *_KEYS):
        meta[column] = clean_ids(meta[column])
    incomplete = meta[["dicom_id", *_KEYS]].isna().any(axis=1)
    for line in meta.index[incomplete]:
        detail = "no dicom_id, subject_id or study_id; not cataloged"
        problems.append(("missing_id", f"{path.name}: line {line + 2}", detail))
    meta = meta[~incomplete]
    repeated = meta["dicom_id"].duplicated()
    for dicom_id in meta.loc[repeated, "dicom_id"]:
        problems.append(("duplicate_row", f"{path.name}: {dicom_id}", "dicom_id listed again; the first row is used"))
    meta = meta[~repeated].reset_index(drop=True)
    if meta.empty:
        raise LoaderError(f"{path}: no image rows")
    images = meta[["dicom_id", *_KEYS]].copy()
    images["view"] = normalize_views(meta["ViewPosition"])
    images["view_raw"] = meta["ViewPosition"].astype("string")
    images["visit"] = _visit(meta)
    for column, name in (("Rows", "rows"), ("Columns", "columns")):
        if column in meta.columns:
            numbers = pd.to_numeric(meta[column], errors="coerce")
            images[name] = numbers.where(numbers >= 1).astype("Int64")
    return images


def _image_paths(images: pd.DataFrame) -> pd.Series:
    """``files/p<first 2 digits of subject>/p<subject>/s<study>/<dicom_id>.jpg``, MIMIC-CXR-JPG's layout."""
    subject, study = images["subject_id"], images["study_id"]
    paths = "files/p" + subject.str[:2] + "/p" + subject + "/s" + study + "/" + images["dicom_id"] + ".jpg"
    return paths.astype("string")


def _visit(meta: pd.DataFrame) -> pd.Series:
    if not {"StudyDate", "StudyTime"} <= set(meta.columns):
        return pd.Series(pd.NA, index=meta.index, dtype="string")
    date = clean_ids(meta["StudyDate"])
    # StudyTime is written as a float (HHMMSS.fff without leading zeros): pad it to sort as text.
    clock = pd.to_numeric(meta["StudyTime"], errors="coerce")
    time = clock.map(lambda t: f"{int(t):06d}" if pd.notna(t) else None).astype("string")
    return (date + "T" + time).astype("string")


def _read_labels(path: Path, problems: list) -> pd.DataFrame:
    labels = read_table(path)
    require_columns(labels, [*_KEYS, *CHEXPERT_OBSERVATIONS], path)
    for column in _KEYS:
        labels[column] = clean_ids(labels[column])
    labels = labels.dropna(subset=_KEYS)
    repeated = labels.duplicated(subset=_KEYS)
    for subject, study in labels.loc[repeated, _KEYS].itertuples(index=False):
        where = f"{path.name}: p{subject}/s{study}"
        problems.append(("duplicate_row", where, "study listed again; the first row is used"))
    labels = labels[~repeated].reset_index(drop=True)
    where = "p" + labels["subject_id"] + "/s" + labels["study_id"]
    values, value_problems = observation_columns(labels, CHEXPERT_OBSERVATIONS, where, path.name)
    problems += value_problems
    return pd.concat([labels[_KEYS], values], axis=1)


def _join_labels(images: pd.DataFrame, labels: pd.DataFrame, labels_name: str, problems: list) -> pd.DataFrame:
    joined = images.merge(labels, on=_KEYS, how="left", indicator=True, validate="many_to_one")
    unlabeled = joined["_merge"] == "left_only"
    for rel in joined.loc[unlabeled, "path"]:
        problems.append(("image_without_labels", rel, f"its study has no row in {labels_name}; cataloged unlabeled"))
    imaged = labels.merge(images[_KEYS].drop_duplicates(), on=_KEYS, how="left", indicator=True)
    for subject, study in imaged.loc[imaged["_merge"] == "left_only", _KEYS].itertuples(index=False):
        where = f"{labels_name}: p{subject}/s{study}"
        problems.append(("labels_without_image", where, "no image of this study in the metadata"))
    joined = joined.drop(columns="_merge")
    for column in ("findings", "findings_uncertain"):
        joined[column] = joined[column].astype("string")
    return joined


def _official_split(catalog: pd.DataFrame, path: Path, problems: list) -> pd.Series:
    table = read_table(path)
    require_columns(table, ["dicom_id", "split"], path)
    table["dicom_id"] = clean_ids(table["dicom_id"])
    table = table.dropna(subset=["dicom_id"]).drop_duplicates(subset="dicom_id")
    raw = catalog["dicom_id"].map(table.set_index("dicom_id")["split"])
    split = raw.str.strip().str.lower().map(_SPLITS)
    for rel, value in zip(catalog.loc[raw.notna() & split.isna(), "path"], raw[raw.notna() & split.isna()]):
        problems.append(("bad_split", rel, f"split {value!r} in {path.name} is not train, validate or test"))
    for rel in catalog.loc[raw.isna(), "path"]:
        problems.append(("no_official_split", rel, f"no row in {path.name}"))
    return split.astype("string")

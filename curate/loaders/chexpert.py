"""CheXpert: ``train.csv`` / ``valid.csv`` listing the JPEGs with 14 observations each.

Each row has ``Path`` (``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``),
``Sex``, ``Age``, ``Frontal/Lateral``, ``AP/PA`` and the 14 observations of the
CheXpert labeler (``No Finding`` ... ``Support Devices``) as 1 (positive), 0
(negative), -1 (uncertain) or blank (not mentioned).

Paths
-----
The data root is the folder holding the CSVs. The published paths start with the
name of the dataset folder (``CheXpert-v1.0-small/`` or ``CheXpert-v1.0/``), which
is the folder the CSVs are in: that first component is dropped, so the catalog path
is ``train/patient00001/study1/view1_frontal.jpg`` and a renamed dataset folder
still works. When the CSVs sit beside the dataset folder instead (a folder of that
name exists next to them), the paths are kept as they are.

``patient_id`` is the ``patientNNNNN`` part of the path, ``visit`` the study number,
``official_split`` ``train`` for ``train.csv`` and ``val`` for ``valid.csv`` (and
``test`` for a ``test.csv``).

Problem kinds
-------------
``missing_images``
    (with ``allow_missing_images``) one row counting the images not on disk.
``unparsed_path``
    a path without ``patientNNNNN`` (cataloged without patient) or ``studyN``.
``duplicate_row``
    a path listed again (the first row is used).
``bad_observation_value``
    an observation cell other than 1, 0, -1 or blank (read as blank).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.loaders._multilabel import (
    ALLOW_MISSING_IMAGES,
    CHEXPERT_OBSERVATIONS,
    check_images,
    normalize_views,
    observation_columns,
)
from curate.loaders.base import Loader, LoadResult, Option, problems_table
from curate.tables import read_table, require_columns

__all__ = ["CheXpertLoader"]

_TABLES = (("train.csv", "train"), ("valid.csv", "val"), ("test.csv", "test"))
_SPLIT_OF_STEM = {"train": "train", "valid": "val", "val": "val", "test": "test"}
# Top-level folders of the dataset: a path starting with one of these has no dataset-folder prefix.
_SPLIT_FOLDERS = frozenset({"train", "valid", "test"})
_REQUIRED = ("Path", "Frontal/Lateral", "AP/PA", *CHEXPERT_OBSERVATIONS)


class CheXpertLoader(Loader):
    """Read CheXpert's ``train.csv`` and ``valid.csv`` into a catalog.

    SOURCE is the dataset folder (``CheXpert-v1.0-small/``, holding the CSVs), its
    parent, or one CSV. ``findings`` lists the positive observations,
    ``findings_uncertain`` the uncertain (-1) ones, and ``finding_<name>`` keeps
    every observation as published; ``label`` is ``findings``.
    """

    name = "chexpert"
    summary = "CheXpert train.csv/valid.csv (Path, Frontal/Lateral, AP/PA, 14 observations)"
    options = (
        ALLOW_MISSING_IMAGES,
        Option("source_name", "name recorded in the catalog's source column", default="chexpert"),
    )

    def _load(self, source: Path, *, allow_missing_images: bool, source_name: str) -> LoadResult:
        tables = _find_tables(source)
        root = tables[0][0].parent.resolve()
        problems: list[tuple[str, str, str]] = []
        parts = [_read_one(path, split, root, source_name, problems) for path, split in tables]
        catalog = pd.concat(parts, ignore_index=True)
        repeated = catalog["path"].duplicated()
        for rel in catalog.loc[repeated, "path"]:
            problems.append(("duplicate_row", rel, "listed again; the first row is used"))
        catalog = catalog[~repeated].reset_index(drop=True)
        listed_in = [path for path, _ in tables]
        problems += check_images(catalog["path"], root, listed_in, allow_missing=allow_missing_images)
        return LoadResult(catalog, root, problems_table(problems))


def _find_tables(source: Path) -> list[tuple[Path, str | None]]:
    if source.is_file():
        return [(source, _SPLIT_OF_STEM.get(source.stem.lower()))]
    for folder in (source, *sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))):
        found = [(folder / name, split) for name, split in _TABLES if (folder / name).is_file()]
        if found:
            return found
    raise LoaderError(f"{source}: no train.csv or valid.csv here nor in its sub-folders")


def _read_one(path: Path, split: str | None, root: Path, source_name: str, problems: list) -> pd.DataFrame:
    table = read_table(path)
    require_columns(table, _REQUIRED, path)
    empty = table["Path"].isna()
    if empty.any():
        lines = ", ".join(str(i + 2) for i in table.index[empty][:5])
        raise LoaderError(f"{path}: column 'Path' is empty on line(s) {lines}")
    relpaths = _relative_paths(table["Path"], root, path)
    values, value_problems = observation_columns(table, CHEXPERT_OBSERVATIONS, relpaths, path.name)
    problems += value_problems
    patients = relpaths.str.extract(r"(?:^|/)(patient\d+)(?:/|$)")[0]
    studies = relpaths.str.extract(r"(?:^|/)study(\d+)(?:/|$)")[0]
    for rel in relpaths[patients.isna()]:
        problems.append(("unparsed_path", rel, "no patientNNNNN folder in the path; no patient id"))
    for rel in relpaths[patients.notna() & studies.isna()]:
        problems.append(("unparsed_path", rel, "no studyN folder in the path; no visit"))
    catalog = pd.DataFrame(
        {
            "sample_id": relpaths.map(lambda p: make_sample_id(source_name, p)),
            "path": relpaths,
            "label": values["findings"],
            "patient_id": patients.astype("string"),
            "source": source_name,
            "official_split": split,
            "visit": pd.to_numeric(studies, errors="coerce").astype("Int64").astype("string"),
            "view": _views(table),
            "view_raw": table["AP/PA"].fillna(table["Frontal/Lateral"]),
        }
    )
    if "Sex" in table.columns:
        catalog["sex"] = table["Sex"]
    if "Age" in table.columns:
        catalog["age"] = pd.to_numeric(table["Age"], errors="coerce").astype("Int64")
    return pd.concat([catalog, values], axis=1)


def _relative_paths(paths: pd.Series, root: Path, table: Path) -> pd.Series:
    posix = paths.str.strip().str.replace("\\", "/", regex=False)
    for line, value in zip(posix.index, posix):
        pure = PurePosixPath(value)
        if pure.is_absolute() or ".." in pure.parts:
            raise LoaderError(f"{table}: line {line + 2}: path {value!r} is not relative to the dataset folder")
    first = posix.str.split("/", n=1).str[0]
    # Decided once per distinct first component, not per file: 200,000 stats would be slow.
    strip = {p: p not in _SPLIT_FOLDERS and not (root / p).is_dir() for p in first.unique()}
    return pd.Series(
        [value.split("/", 1)[1] if strip[head] and "/" in value else value for value, head in zip(posix, first)],
        index=paths.index,
        dtype="string",
    )


def _views(table: pd.DataFrame) -> pd.Series:
    lateral = table["Frontal/Lateral"].str.strip().str.lower() == "lateral"
    projection = normalize_views(table["AP/PA"])
    # A frontal image without PA/AP is still frontal: kept by frontal-only tasks.
    frontal = projection.where(projection.isin(["PA", "AP"]), "FRONTAL")
    return frontal.mask(lateral.fillna(False), "LATERAL").astype("string")

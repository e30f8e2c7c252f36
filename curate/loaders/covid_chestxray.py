"""The ieee8023 covid-chestxray-dataset: ``metadata.csv`` and its ``images/`` folder.

``metadata.csv`` has one row per image: ``patientid`` (text: ids such as ``"19"``
and ``"183a"`` are kept as written), ``offset`` (days since the first symptoms),
``sex``, ``age``, ``finding`` (a path in a hierarchy, e.g. ``Pneumonia/Viral/COVID-19``,
``Pneumonia/Bacterial/Streptococcus``, ``Tuberculosis``, ``No Finding``),
``RT_PCR_positive``, ``survival``, ``intubated``, ..., ``view`` (``PA``, ``AP``,
``AP Supine``, ``L``, ``Axial``, ``Coronal``), ``modality`` (``X-ray`` or ``CT``),
``date``, ``location``, ``folder`` (``images``, ``volumes``) and ``filename``.

The image of a row is ``<folder>/<filename>`` (``images/<filename>`` in old
versions without ``folder``). ``findings`` is the row's finding; a task naming
``Pneumonia/Viral`` matches ``Pneumonia/Viral/COVID-19`` too (see
:mod:`curate.tasks`). ``finding`` cells ``todo`` and ``Unknown`` are no label.
``visit`` is ``offset``; ``view`` is normalized (``AP Supine`` -> ``AP``, ``L`` ->
``LATERAL``) and ``view_raw`` keeps the published value; ``modality_raw`` keeps the
published modality (``X-ray``, ``CT``) and ``modality`` is the DICOM code where one
is implied (``CT``; empty for ``X-ray``, which may be CR or DX). The other columns are carried along under
snake-case names (``RT_PCR_positive`` -> ``rt_pcr_positive``).

This dataset's metadata lists some files that the repository does not hold: unlike
the larger sources, such rows are left out and listed, not refused.

Problem kinds
-------------
``excluded_modality``
    a row whose modality is not among the option ``modalities`` (default X-ray).
``missing_file``
    a row whose image file does not exist (not cataloged).
``not_a_regular_file``, ``broken_link``
    a row whose file, or an entry of its folders, is a pipe, socket, device or a
    symbolic link to nothing (not cataloged, never opened).
``image_without_row``
    an image file in a folder the table uses that no row lists.
``duplicate_row``
    a file listed again (the first row is used).
``no_finding_label``
    ``finding`` empty, ``todo`` or ``Unknown`` (cataloged unlabeled).
``missing_patient_id``
    an empty ``patientid`` (cataloged without patient).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pandas as pd

from curate.catalog import REQUIRED_COLUMNS, make_sample_id
from curate.errors import LoaderError
from curate.imaging import DecodeReason, regular_file_failure
from curate.loaders._multilabel import join_findings, normalize_views, snake_case
from curate.loaders.base import IMAGE_EXTENSIONS, Loader, LoadResult, Option, Problem, problems_table, walk_files
from curate.tables import read_table, require_columns

__all__ = ["CovidChestXrayLoader"]

TABLE_NAME = "metadata.csv"
_REQUIRED = ("patientid", "finding", "view", "modality", "filename")
_NO_LABEL = frozenset({"", "todo", "unknown"})
# Columns the loader turns into catalog columns; the others are carried along.
_USED = frozenset({"patientid", "finding", "view", "modality", "folder", "filename", "offset"})


class CovidChestXrayLoader(Loader):
    """Read the covid-chestxray-dataset (``metadata.csv`` + ``images/``) into a catalog.

    SOURCE is the repository folder (holding ``metadata.csv``) or ``metadata.csv``
    itself; the data root is the table's folder. Only X-ray rows are cataloged
    unless ``modalities`` says otherwise; the rest is listed in the problems.
    """

    name = "covid-chestxray"
    summary = "ieee8023 covid-chestxray-dataset: metadata.csv with images/"
    options = (
        Option(
            "modalities",
            "modalities to catalog, as written in the 'modality' column (case ignored)",
            multiple=True,
            default=("X-ray",),
        ),
        Option("source_name", "name recorded in the catalog's source column", default="covid-chestxray"),
    )

    def _load(self, source: Path, *, modalities: tuple[str, ...], source_name: str) -> LoadResult:
        table_path = source if source.is_file() else source / TABLE_NAME
        if not table_path.is_file():
            raise LoaderError(f"{source}: no {TABLE_NAME} in this folder")
        root = table_path.parent.resolve()
        table = read_table(table_path)
        require_columns(table, _REQUIRED, table_path)
        problems: list[tuple[str, str, str]] = []

        table["relpath"] = _relative_paths(table, table_path)
        table = _drop_repeated(table, problems)
        kept = _keep_modalities(table, modalities, problems)
        # A stat per file, no open: a listed pipe or socket is named, not read.
        failures = kept["relpath"].map(lambda p: regular_file_failure(root / p))
        exists = failures.isna()
        if not exists.any() and len(kept):
            raise LoaderError(
                f"{table_path}: none of the {len(kept)} files it lists exists under {root} "
                f"(first: {kept['relpath'].iloc[0]}); is this the dataset's folder?"
            )
        for rel, failure in zip(kept.loc[~exists, "relpath"], failures[~exists]):
            if failure.reason is DecodeReason.MISSING_FILE:
                detail = f"listed in {table_path.name}, not on disk; not cataloged"
            else:
                detail = f"{failure.detail}; listed in {table_path.name}; not cataloged"
            problems.append((failure.reason.value, rel, detail))
        problems += _unlisted_files(root, table, table_path.name)
        rows = kept[exists].reset_index(drop=True)
        if rows.empty:
            raise LoaderError(f"{table_path}: no row to catalog (modalities kept: {', '.join(modalities)})")
        catalog = _catalog(rows, source_name, problems)
        return LoadResult(catalog, root, problems_table(problems))


def _relative_paths(table: pd.DataFrame, table_path: Path) -> pd.Series:
    folder = table["folder"].fillna("images") if "folder" in table.columns else pd.Series("images", index=table.index)
    relpaths = folder.str.strip().str.strip("/") + "/" + table["filename"].str.strip()
    empty = table["filename"].isna()
    if empty.any():
        lines = ", ".join(str(i + 2) for i in table.index[empty][:5])
        raise LoaderError(f"{table_path}: column 'filename' is empty on line(s) {lines}")
    for line, value in zip(relpaths.index, relpaths):
        pure = PurePosixPath(value)
        if pure.is_absolute() or ".." in pure.parts:
            raise LoaderError(f"{table_path}: line {line + 2}: {value!r} leaves the dataset folder")
    return relpaths


def _drop_repeated(table: pd.DataFrame, problems: list) -> pd.DataFrame:
    repeated = table["relpath"].duplicated()
    for rel in table.loc[repeated, "relpath"]:
        problems.append(("duplicate_row", rel, "listed again; the first row is used"))
    return table[~repeated]


def _keep_modalities(table: pd.DataFrame, modalities: tuple[str, ...], problems: list) -> pd.DataFrame:
    wanted = {m.strip().lower() for m in modalities}
    modality = table["modality"].str.strip()
    keep = modality.str.lower().isin(wanted)
    for rel, value in zip(table.loc[~keep, "relpath"], modality[~keep]):
        problems.append(
            ("excluded_modality", rel, f"modality {value if pd.notna(value) else 'empty'}; option modalities keeps it")
        )
    return table[keep]


def _unlisted_files(root: Path, table: pd.DataFrame, table_name: str) -> list[Problem]:
    """Images in the table's folders that no row lists, and the entries there that are not files."""
    listed = set(table["relpath"])
    folders = sorted({PurePosixPath(p).parts[0] for p in listed if "/" in p})
    problems = []
    for folder in folders:
        if not (root / folder).is_dir():
            continue
        files, odd = walk_files(root / folder, relative_to=root)
        problems += [problem for problem in odd if problem[1] not in listed]  # listed ones are reported already
        for path in files:
            rel = path.relative_to(root).as_posix()
            if rel not in listed and path.suffix.lower() in IMAGE_EXTENSIONS:
                problems.append(("image_without_row", rel, f"no row in {table_name}"))
    return problems


def _catalog(rows: pd.DataFrame, source_name: str, problems: list) -> pd.DataFrame:
    patient = rows["patientid"].astype("string").str.strip()
    patient = patient.mask(patient == "")
    for rel in rows.loc[patient.isna().to_numpy(), "relpath"]:
        problems.append(("missing_patient_id", rel, "empty patientid"))
    catalog = pd.DataFrame(
        {
            "sample_id": rows["relpath"].map(lambda p: make_sample_id(source_name, p)),
            "path": rows["relpath"],
            "label": None,
            "patient_id": patient,
            "source": source_name,
            "findings": _findings(rows, problems),
            "visit": rows["offset"].str.strip() if "offset" in rows.columns else pd.NA,
            "view": normalize_views(rows["view"]),
            "view_raw": rows["view"],
            # The catalog's modality is a DICOM code (the scan checks it against CR/DX);
            # "X-ray" does not say which, so only CT is carried over as a code.
            "modality": rows["modality"].str.strip().map(lambda m: "CT" if str(m).upper() == "CT" else None),
            "modality_raw": rows["modality"].str.strip(),
        }
    )
    catalog["label"] = catalog["findings"]
    for column in rows.columns:  # carry the table's other columns along
        name = snake_case(column)
        if column in _USED or column == "relpath" or not name or name.startswith("unnamed"):
            continue
        if name not in catalog.columns and name not in REQUIRED_COLUMNS and not rows[column].isna().all():
            catalog[name] = rows[column]
    return catalog


def _findings(rows: pd.DataFrame, problems: list) -> pd.Series:
    out = []
    for rel, text in zip(rows["relpath"], rows["finding"]):
        # Old versions wrote several findings in one cell ("COVID-19, ARDS").
        names = [] if pd.isna(text) else [n.strip() for n in re.split(r"[|,]", str(text)) if n.strip()]
        names = [n for n in names if n.lower() not in _NO_LABEL]
        if not names:
            problems.append(("no_finding_label", rel, f"finding {text if pd.notna(text) else 'empty'}: no label"))
            out.append(None)
        else:
            out.append(join_findings(names))
    return pd.Series(out, index=rows.index, dtype="string")

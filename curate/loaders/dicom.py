"""A folder tree of DICOM files, read header-only, with labels from a table or a tag."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.imaging import DecodeFailure, read_dicom_header
from curate.loaders.base import (
    Loader,
    LoadResult,
    Option,
    Problem,
    dicom_fields,
    problems_table,
    require_dir,
    walk_files,
)
from curate.tables import read_table, require_columns

__all__ = ["DicomLoader"]

#: The catalog column each ``key`` option joins on.
_KEYS = {"filename": "filename", "path": "path", "sop_uid": "sop_instance_uid", "patient_id": "patient_id"}
#: Keys that name one file: a value held by several files would label unrelated images alike.
#: (A patient's label is meant for all of their files.)
_ONE_FILE_KEYS = frozenset({"filename", "path", "sop_uid"})
_DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
# Signatures of the image formats a file without extension may be instead of DICOM.
_IMAGE_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"BM": "a BMP image",
    b"GIF8": "a GIF image",
}
# A DICOM file without preamble starts with its first element: group 0002 (file meta) or
# 0008 (identification), little or big endian.
_BARE_DICOM_GROUPS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")
# A header with none of these is not taken for DICOM: pydicom's force=True parses any bytes.
_IDENTIFYING_FIELDS = ("sop_instance_uid", "modality", "rows", "dicom_patient_id")


class DicomLoader(Loader):
    """Read every DICOM file below a folder (by its ``DICM`` magic or ``.dcm`` extension).

    Only headers are read, so ingest is fast. Files without extension (or named by
    a UID, ``1.2.840...``) and without the ``DICM`` preamble are read as DICOM when
    they start like a DICOM data set, as old exports write them. Labels come from a
    table joined by file name, path (relative to the folder), SOP Instance UID or
    PatientID, or from a DICOM tag; without either the catalog is unlabeled. A file
    name, path or UID held by several files is refused as a key (exports repeat
    ``IM0001.dcm`` in every series). Files whose header cannot be read stay in the
    catalog (the scan reports why); they, the files that are not DICOM and the
    entries that are not files (pipes, sockets, broken links) are listed in the
    problems.
    """

    name = "dicom"
    summary = "a folder tree of DICOM files (header-only), labels from a table or a tag"
    options = (
        Option("labels", "table (CSV/TSV/Parquet) holding the labels", type=Path),
        Option(
            "key",
            "how label rows find their file: file name, path relative to SOURCE, SOPInstanceUID, or PatientID "
            "(labels every file of the patient)",
            default="filename",
            choices=tuple(_KEYS),
        ),
        Option("key_col", "column of the labels table holding the key (default: same name as key)"),
        Option("label_col", "column of the labels table holding the label", default="label"),
        Option("label_tag", "DICOM keyword whose value is the label, e.g. BodyPartExamined"),
        Option("source_name", "name recorded in the catalog's source column", default="dicom"),
    )

    def _load(self, source, *, labels, key, key_col, label_col, label_tag, source_name):
        require_dir(source)
        if labels is not None and label_tag is not None:
            raise LoaderError("give either labels (a table) or label_tag, not both")
        files, problems = _dicom_files(source)
        rows = []
        for path, bare in files:
            relpath = path.relative_to(source).as_posix()
            row = {"sample_id": make_sample_id(source_name, relpath), "path": relpath, "source": source_name}
            try:
                header = read_dicom_header(path)
            except DecodeFailure as failure:
                if bare:  # nothing says this file is DICOM: it is not a sample
                    problems.append(("not_dicom", relpath, f"no DICM preamble nor .dcm extension, and "
                                     f"{failure.reason.value}: {failure.detail}; not cataloged"))
                    continue
                problems.append(("unreadable_header", relpath, f"{failure.reason.value}: {failure.detail}"))
                header = {}
            if bare and not any(header.get(field) for field in _IDENTIFYING_FIELDS):
                problems.append(("not_dicom", relpath, "no DICM preamble nor .dcm extension, and no SOPInstanceUID, "
                                 "Modality, Rows or PatientID in what pydicom reads; not cataloged"))
                continue
            row.update(dicom_fields(header))
            row["patient_id"] = header.get("dicom_patient_id")
            row["sop_instance_uid"] = header.get("sop_instance_uid")
            row["filename"] = path.name
            row["label"] = _tag_value(path, label_tag) if label_tag and header else None
            rows.append(row)
        if not rows:
            # Nothing is written when the loader refuses: the message names what was found instead.
            seen = f"; first of {len(problems)} other entries: {problems[0][1]}: {problems[0][2]}" if problems else ""
            raise LoaderError(
                f"{source}: no DICOM files found (looked for a DICM preamble, a .dcm extension, "
                f"or a DICOM data set in files without extension){seen}"
            )
        catalog = pd.DataFrame(rows)
        if labels is not None:
            catalog, label_problems = _join_labels(catalog, Path(labels), key, key_col or key, label_col)
            problems += label_problems
        for relpath in catalog.loc[catalog["patient_id"].isna(), "path"]:
            problems.append(("missing_patient_id", relpath, "no PatientID in the header"))
        catalog = catalog.drop(columns=["filename"])
        return LoadResult(catalog, source.resolve(), problems_table(problems))


def _dicom_files(root: Path) -> tuple[list[tuple[Path, bool]], list[Problem]]:
    """The DICOM candidates below ``root`` as ``(path, bare)``, and the problems of every other entry.

    ``bare`` marks a file found only by how it starts (no preamble, no extension):
    its header decides whether it is DICOM.
    """
    files, problems = walk_files(root)
    found = []
    for path in files:
        relpath = path.relative_to(root).as_posix()
        try:
            head = _head(path)
        except OSError as exc:
            problems.append(("unreadable_file", relpath, f"{exc.strerror or exc}; not cataloged"))
            continue
        suffix = path.suffix.lower()
        if head[128:132] == b"DICM" or suffix in _DICOM_EXTENSIONS:
            found.append((path, False))
        elif not _has_extension(path.name):
            image = next((what for magic, what in _IMAGE_MAGIC.items() if head.startswith(magic)), None)
            if image is not None:
                problems.append(("not_dicom", relpath, f"{image}, not DICOM; not cataloged"))
            elif head[:2] in _BARE_DICOM_GROUPS:
                found.append((path, True))
            else:
                problems.append(("not_dicom", relpath, "no extension, no DICM preamble and it does not start "
                                 "like a DICOM data set; not cataloged"))
        else:
            problems.append(("not_dicom", relpath, f"extension {path.suffix!r} and no DICM preamble; not cataloged"))
    return found, problems


def _head(path: Path) -> bytes:
    """The first 132 bytes: the preamble and the ``DICM`` magic, or a bare data set's first element."""
    with open(path, "rb") as fh:
        return fh.read(132)


def _has_extension(name: str) -> bool:
    """Whether ``name`` ends in an extension; a UID's last number (``1.2.840.5``) is none."""
    suffix = Path(name).suffix
    return bool(suffix) and not suffix[1:].isdigit()


def _tag_value(path: Path, keyword: str):
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=[keyword])
    value = ds.get(keyword)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _join_labels(
    catalog: pd.DataFrame, labels_path: Path, key: str, key_col: str, label_col: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give each catalog row the label of its ``key`` in the labels table; list what did not match.

    Raises
    ------
    LoaderError
        When the table repeats a key, or a key that names one file matches several.
    """
    catalog_key = _KEYS[key]
    table = read_table(labels_path)
    require_columns(table, [key_col, label_col], labels_path)
    table = table[[key_col, label_col]].dropna(subset=[key_col])
    table[key_col] = table[key_col].astype(str).str.strip()
    repeated = table[key_col].duplicated(keep=False)
    if repeated.any():
        keys = ", ".join(sorted(set(table.loc[repeated, key_col]))[:5])
        raise LoaderError(f"{labels_path}: key column '{key_col}' repeats: {keys}")
    if key in _ONE_FILE_KEYS:
        _refuse_shared_keys(catalog, catalog_key, set(table[key_col]), labels_path, key)
    mapping = table.set_index(key_col)[label_col]
    catalog["label"] = catalog[catalog_key].map(mapping)
    unlabeled = catalog["label"].isna()
    problems: list[Problem] = [
        ("image_without_label", p, f"no row in {labels_path.name} for {catalog_key} {k!r}")
        for p, k in zip(catalog.loc[unlabeled, "path"], catalog.loc[unlabeled, catalog_key])
    ]
    unused = sorted(set(mapping.index) - set(catalog[catalog_key].dropna()))
    problems += [
        ("label_without_image", f"{labels_path.name}: {k}", f"no DICOM file with {catalog_key} {k!r}") for k in unused
    ]
    return catalog, problems


def _refuse_shared_keys(catalog: pd.DataFrame, column: str, labeled: set[str], labels_path: Path, key: str) -> None:
    """Refuse a label row whose key several files hold: it would label unrelated images alike."""
    values = catalog[column]
    shared = catalog[values.duplicated(keep=False) & values.notna() & values.isin(labeled)]
    if shared.empty:
        return
    groups = shared.groupby(column, sort=True)["path"]
    value, paths = next(iter(groups))
    listed = ", ".join(sorted(paths)[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    others = f" (and {groups.ngroups - 1} more such {column} values)" if groups.ngroups > 1 else ""
    better = " or ".join(repr(k) for k in ("path", "sop_uid") if k != key)
    raise LoaderError(
        f"{labels_path}: {column} {value!r} names {len(paths)} files ({listed}){others}; "
        f"a label row cannot tell them apart: join on the key {better}"
    )

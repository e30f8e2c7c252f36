"""De-identification: keyed pseudonyms, shifted dates, and a check that nothing identifying left.

With ``deid`` (a recipe section, or ``curate ingest --deid-key-file``), the catalog is
de-identified as soon as a loader has read it:

- ``sample_id`` (an unkeyed hash of the path, which may hold the PatientID) becomes
  ``s-<16 hex>`` under the key.
- ``patient_id`` becomes ``p-<16 hex>``, an HMAC-SHA256 of the source id under a secret
  key the user keeps outside the repository: the same patient gets the same pseudonym
  in every dataset and rerun made with that key, and nobody without the key can
  recompute or reverse it. Another key gives other pseudonyms.
- DICOM UIDs (``*_uid`` columns) are replaced the same way; the raw DICOM PatientID
  column is dropped.
- Dates (columns named ``*date*``/``*time*`` or of a date type) are shifted by a
  number of days drawn from the patient's pseudonym (-365..365, the same for all of
  a patient's dates, so intervals survive), or dropped.
- Every other column that is not a known catalog column is dropped (and named in the
  report), unless the user keeps it by name.

The catalog keeps each sample's path: it is curate's private link to the files, stays
in the work folder, and never goes into a manifest or an export. A de-identified
manifest holds no path, file name or data root (rows name files ``<sample_id><ext>``);
exports copy or render every image under its sample id. :func:`find_phi` then scans
written files (tables, JSON, text, PNG text chunks) for the identifying values of the
source DICOM headers (the PS3.15 basic profile's attributes, :func:`phi_values`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curate.errors import CurateError

__all__ = [
    "Deid",
    "read_key",
    "deidentify_catalog",
    "phi_values",
    "find_phi",
    "BASIC_PROFILE",
]

_MIN_KEY_BYTES = 16
#: Catalog columns kept as they are (with ``patient_id`` pseudonymized): what curate's stages use.
_KEPT = {
    "sample_id", "path", "label", "patient_id", "source", "side", "visit", "view", "crop", "official_split",
    "modality", "body_part", "laterality", "photometric", "bits_stored", "rows", "columns", "sha256",
    "findings", "findings_uncertain", "burned_in_annotation",
}
#: Per-finding columns of the chest X-ray loaders (``finding_pneumonia``...): labels, not identifiers.
_KEPT_PREFIX = "finding_"
_DROPPED_ALWAYS = {"dicom_patient_id"}
_DATE_NAME = re.compile(r"date|time", re.IGNORECASE)

#: DICOM attributes whose values identify a person or a visit (DICOM PS3.15 Annex E, the basic
#: application level confidentiality profile: the ones real radiograph headers carry).
BASIC_PROFILE = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthDate",
    "PatientBirthName", "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers",
    "MedicalRecordLocator", "IssuerOfPatientID", "AccessionNumber", "StudyID", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
    "StationName", "DeviceSerialNumber", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "FrameOfReferenceUID", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime",
    "AdditionalPatientHistory", "PatientComments", "StudyDescription", "RequestedProcedureID",
)


@dataclass(frozen=True)
class Deid:
    """How to de-identify: the secret key, what to do with dates, columns the user keeps.

    Parameters
    ----------
    key : bytes
        The secret (at least 16 bytes; see :func:`read_key`).
    dates : {"shift", "drop"}
        Shift each patient's dates by the same number of days, or drop date columns.
    keep : tuple of str
        Extra catalog columns to keep as they are (the user's decision, recorded).
    """

    key: bytes = field(repr=False)
    dates: str = "shift"
    keep: tuple[str, ...] = ()

    def __post_init__(self):
        if len(self.key) < _MIN_KEY_BYTES:
            raise CurateError(f"de-identification key: at least {_MIN_KEY_BYTES} bytes, got {len(self.key)}")
        if self.dates not in ("shift", "drop"):
            raise CurateError(f"deid dates {self.dates!r}: use shift or drop")
        object.__setattr__(self, "keep", tuple(self.keep))

    @property
    def key_id(self) -> str:
        """Names the key without revealing it: equal ids, equal pseudonyms."""
        return hashlib.sha256(b"curate deid key id\0" + self.key).hexdigest()[:12]

    def pseudonym(self, value: object, kind: str = "patient") -> str | None:
        """``p-`` (or ``u-`` for UIDs) and 16 hex digits of the keyed hash of ``value``; None stays None."""
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        digest = hmac.new(self.key, f"{kind}\0{value}".encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{kind[0]}-{digest[:16]}"

    def day_shift(self, pseudonym: str | None) -> int:
        """The patient's date shift in days, -365..365, drawn from the key and the pseudonym."""
        if pseudonym is None:
            return 0
        digest = hmac.new(self.key, f"dates\0{pseudonym}".encode("utf-8"), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") % 731 - 365

    def record(self) -> dict:
        """What the card records: the method, the key's id (never the key), dates, kept columns."""
        return {"method": "hmac-sha256", "key_id": self.key_id, "dates": self.dates, "keep": list(self.keep)}


def read_key(path: str | os.PathLike) -> bytes:
    """The de-identification key stored in ``path`` (surrounding whitespace ignored).

    Make one with ``python -c "import secrets; print(secrets.token_hex(32))" > ~/.curate/deid.key``
    and keep it outside the repository and the data: whoever holds it can recompute pseudonyms.
    """
    path = Path(path).expanduser()
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise CurateError(f"de-identification key file {path}: {exc.strerror}") from None
    if len(key) < _MIN_KEY_BYTES:
        raise CurateError(f"de-identification key file {path}: at least {_MIN_KEY_BYTES} bytes of secret, found {len(key)}")
    return key


def deidentify_catalog(catalog: pd.DataFrame, deid: Deid) -> tuple[pd.DataFrame, dict]:
    """The catalog with pseudonymized patients and UIDs, shifted or dropped dates, unknown columns dropped.

    Returns
    -------
    (DataFrame, dict)
        The catalog (``attrs`` kept, ``attrs["deid"]`` set) and a report: columns
        pseudonymized, shifted and dropped.
    """
    out = catalog.copy()
    report: dict[str, list[str]] = {"pseudonymized": ["sample_id", "patient_id"], "shifted": [], "dropped": []}
    # a sample id is an unkeyed hash of the path, and paths often hold the PatientID: keyed too
    out["sample_id"] = pd.array([deid.pseudonym(v, "sample") for v in out["sample_id"].astype("object")], dtype="string")
    patients = out["patient_id"].astype("object")
    out["patient_id"] = pd.array([deid.pseudonym(v) for v in patients], dtype="string")
    shifts = np.array([deid.day_shift(p) for p in out["patient_id"].astype("object")], dtype="int64")
    for column in list(out.columns):
        if column in deid.keep or column in ("patient_id", "sample_id"):
            continue
        values = out[column]
        if column.endswith("_uid"):
            out[column] = pd.array([deid.pseudonym(v, "uid") for v in values.astype("object")], dtype="string")
            report["pseudonymized"].append(column)
        elif column in _DROPPED_ALWAYS:
            out = out.drop(columns=column)
            report["dropped"].append(column)
        elif _is_date(column, values):
            if deid.dates == "drop":
                out = out.drop(columns=column)
                report["dropped"].append(column)
            else:
                out[column] = _shift_dates(values, shifts)
                report["shifted"].append(column)
        elif column not in _KEPT and not column.startswith(_KEPT_PREFIX):
            out = out.drop(columns=column)
            report["dropped"].append(column)
    out.attrs = {**catalog.attrs, "deid": {**deid.record(), **report}}
    return out, report


def _is_date(column: str, values: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(values) or bool(_DATE_NAME.search(column))


def _shift_dates(values: pd.Series, shifts: np.ndarray) -> pd.Series:
    """Dates moved by each row's shift; DICOM ``YYYYMMDD`` text stays text of that form."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values + pd.to_timedelta(shifts, unit="D")
    text = values.astype("string")
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    compact = parsed.notna()
    if not compact.any():
        parsed = pd.to_datetime(text, errors="coerce")
    moved = parsed + pd.to_timedelta(shifts, unit="D")
    formatted = moved.dt.strftime("%Y%m%d" if compact.any() else "%Y-%m-%d")
    # a value that is no date cannot be shifted, so it is not kept either
    return pd.Series(pd.array(formatted.where(moved.notna(), None), dtype="string"), index=values.index)


# --------------------------------------------------------------------------- the PHI check


def phi_values(dicom_paths: Iterable[str | os.PathLike]) -> dict[str, set[str]]:
    """Attribute keyword -> the identifying values found in these DICOM files' headers.

    Person names (VR PN) also give their components of four or more characters
    (``DOE^JOHN`` gives ``DOE^JOHN`` and ``JOHN``), so a name reformatted on the way
    out is still found.
    Values shorter than four characters are too common to search for and are left out.
    """
    import pydicom

    found: dict[str, set[str]] = {}
    for path in dicom_paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:  # not a DICOM, or damaged: it has no header values to look for
            continue
        for keyword in BASIC_PROFILE:
            value = ds.get(keyword)
            if value is None or value == "":
                continue
            values = list(value) if isinstance(value, pydicom.multival.MultiValue) else [value]
            person = ds.data_element(keyword).VR == "PN"
            for item in values:
                text = str(item).strip()
                parts = {text} | ({p for p in re.split(r"[\^ ]+", text)} if person else set())
                found.setdefault(keyword, set()).update(p for p in parts if len(p) >= 4)
    return found


def find_phi(folder: str | os.PathLike, values: Mapping[str, set[str]]) -> list[dict]:
    """Every place under ``folder`` where one of ``values`` occurs (the value itself is not repeated).

    Reads Parquet (cells and metadata), CSV/JSON/JSONL/Markdown/text and YAML as text,
    PNG text chunks (``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``), file and folder names, and
    the targets of symbolic links. Returns ``{"file", "where", "attribute"}`` per hit.
    """
    folder = Path(folder)
    needles = [(keyword, value.lower()) for keyword, vs in values.items() for value in vs]
    hits: list[dict] = []

    def search(text: str, file: Path, where: str) -> None:
        low = text.lower()
        for keyword, needle in needles:
            if needle in low:
                hits.append({"file": str(file), "where": where, "attribute": keyword})

    for path in sorted(folder.rglob("*")):
        search(str(path.relative_to(folder)), path, "name")
        if path.is_symlink():
            search(os.readlink(path), path, "link target")
            continue
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            search(_parquet_text(path), path, "table")
        elif suffix == ".png":
            search(_png_text(path), path, "PNG chunks")
        elif suffix in (".json", ".jsonl", ".csv", ".tsv", ".md", ".txt", ".yaml", ".yml", ".html"):
            search(path.read_text(encoding="utf-8", errors="replace"), path, "text")
        elif suffix in (".dcm", ""):
            search(path.read_bytes().decode("latin-1"), path, "bytes")
    return hits


def _parquet_text(path: Path) -> str:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    parts = [json.dumps({k.decode(errors="replace"): v.decode(errors="replace") for k, v in (table.schema.metadata or {}).items()})]
    for column in table.column_names:
        parts.append(column)
        parts.extend(str(v) for v in table.column(column).to_pylist())
    return "\n".join(parts)


def _png_text(path: Path) -> str:
    """The text a PNG carries besides pixels: its tEXt, zTXt, iTXt and eXIf chunks."""
    data = path.read_bytes()
    out, at = [], 8
    while at + 8 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        if kind in (b"tEXt", b"iTXt", b"eXIf"):
            out.append(body.decode("latin-1"))
        elif kind == b"zTXt":
            keyword, _, rest = body.partition(b"\0")
            try:
                out.append(keyword.decode("latin-1") + " " + zlib.decompress(rest[1:]).decode("latin-1"))
            except zlib.error:
                out.append(body.decode("latin-1"))
        at += 12 + length
    return "\n".join(out)

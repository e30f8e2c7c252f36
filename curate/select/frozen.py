"""Frozen splits: written once, reused by every later selection so experiments share one test set.

A frozen split is a Parquet file with one row per sample (``sample_id``,
``patient_id``, ``label``, ``split``) and, in the file's metadata under
``curate.split``, a small JSON header: how the split was made (method, seed,
fractions) and the fingerprint of the catalog it was made from.

Reusing it on a catalog that has changed never moves a sample that is in the
file. A new sample goes to the split of its patient when the patient is in the
file; the sample of a new patient goes to a split drawn from a hash of the seed
and the patient id against the recorded fractions. That draw depends on nothing
else (not on row order, not on the other new patients), so a patient added today
lands where it would have landed had it come in any later batch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate._io import atomic_path, read_parquet_table
from curate.catalog import SPLITS
from curate.errors import CurateError
from curate.select._labels import label_text
from curate.select.errors import SplitError
from curate.select.splits import SPLIT_COLUMNS, as_split_table, patient_groups

__all__ = ["catalog_fingerprint", "freeze_split", "is_frozen_split", "read_frozen_split", "apply_frozen_split"]

_METADATA_KEY = b"curate.split"
FORMAT_VERSION = 1


def catalog_fingerprint(table: pd.DataFrame) -> str:
    """sha256 of the sorted (sample_id, patient_id, label) rows of a catalog or split table.

    It changes when a sample is added or removed, or changes patient or label;
    not when rows are reordered or other columns change.
    """
    key = pd.DataFrame(
        {
            "s": table["sample_id"].astype("string").fillna(""),
            "p": table["patient_id"].astype("string").fillna(""),
            "l": label_text(table["label"]).fillna(""),
        }
    ).sort_values(["s", "p", "l"])
    text = "".join(f"{s}\t{p}\t{lab}\n" for s, p, lab in key.itertuples(index=False))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _header(split_table: pd.DataFrame) -> dict:
    info = dict(split_table.attrs.get("split", {}))
    rows = split_table[split_table["split"].notna()]
    shares = rows["split"].value_counts(normalize=True)
    if info.get("method") == "frozen":  # re-freezing a reused split keeps how it was first made
        info = dict(info.get("frozen", {}))
    fractions = info.get("fractions") or {s: round(float(shares[s]), 6) for s in SPLITS if s in shares.index}
    return {
        "format": FORMAT_VERSION,
        "method": info.get("method", "unknown"),
        "seed": info.get("seed"),
        "fractions": fractions,
        "catalog_fingerprint": catalog_fingerprint(rows),
        "samples": int(len(rows)),
        "patients": int(patient_groups(rows).nunique()),
    }


def freeze_split(split_table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a split table atomically as a frozen split; rows without a split are left out.

    An existing file is replaced only when it is a frozen split itself: curate never
    overwrites a file it did not write.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    CurateError
        ``path`` exists and is not a frozen split (or is a folder).
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not is_frozen_split(path):
            raise CurateError(f"{path}: exists and is not a frozen split written by curate; not overwritten (give a new path)")
    rows = split_table[split_table["split"].notna()].sort_values("sample_id")
    frame = pd.DataFrame(
        {
            "sample_id": rows["sample_id"].astype("string"),
            "patient_id": rows["patient_id"].astype("string"),
            "label": label_text(rows["label"]),
            "split": rows["split"].astype("string"),
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {_METADATA_KEY: json.dumps(_header(split_table), sort_keys=True).encode("utf-8")}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
    return path


def is_frozen_split(path: str | os.PathLike) -> bool:
    """True for a Parquet file written by :func:`freeze_split`."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return _METADATA_KEY in (pq.read_schema(path).metadata or {})
    except (pa.ArrowInvalid, OSError):
        return False


def read_frozen_split(path: str | os.PathLike) -> pd.DataFrame:
    """Read a frozen split; ``attrs["split"]`` holds its header.

    Raises
    ------
    CurateError
        For a missing file or one that is not a frozen split.
    """
    path = Path(path)
    table = read_parquet_table(path, "frozen split")
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    frame = table.to_pandas()
    if raw is None or any(c not in frame.columns for c in SPLIT_COLUMNS):
        raise CurateError(f"{path}: not a frozen split written by curate (freeze one with --freeze-split)")
    header = json.loads(raw)
    bad = ~frame["split"].isin(SPLITS)
    if bad.any():
        found = frame.loc[bad, "split"].iloc[0]
        raise CurateError(f"{path}: split values must be {', '.join(SPLITS)}; found {found!r}")
    if frame["sample_id"].duplicated().any():
        repeated = frame.loc[frame["sample_id"].duplicated(), "sample_id"].iloc[0]
        raise CurateError(f"{path}: sample_id {repeated} repeats")
    frame.attrs["split"] = {**header, "file": str(path)}
    return frame


def _hashed_split(patient_groups_: pd.Series, fractions: dict[str, float], seed: int) -> pd.Series:
    """A split per group from a hash of (seed, group) against the cumulative fractions."""
    names = list(fractions)
    edges = np.cumsum([fractions[n] for n in names])
    edges[-1] = 1.0

    def draw(group: str) -> str:
        digest = hashlib.blake2b(f"{seed}\x00{group}".encode("utf-8"), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        return names[int(np.searchsorted(edges, u, side="right"))]

    return patient_groups_.map(draw)


def apply_frozen_split(catalog: pd.DataFrame, frozen: pd.DataFrame) -> pd.DataFrame:
    """The split of every catalog sample under a frozen split.

    Parameters
    ----------
    catalog : DataFrame
        A validated catalog, possibly with samples the frozen split has not seen.
    frozen : DataFrame
        From :func:`read_frozen_split`.

    Returns
    -------
    DataFrame
        A split table in catalog order; ``attrs["split"]`` holds the frozen header
        and what was done: ``kept`` (samples found in the file), ``new_by_patient``,
        ``new_by_hash``, ``absent_from_catalog`` and ``catalog_changed``.

    Raises
    ------
    SplitError
        When the frozen file itself puts a patient in two splits.
    """
    header = dict(frozen.attrs.get("split", {}))
    by_sample = dict(zip(frozen["sample_id"].astype(str), frozen["split"].astype(str)))
    frozen_groups = patient_groups(frozen)
    per_group = frozen["split"].astype(str).groupby(frozen_groups).agg(lambda s: sorted(set(s)))
    crossing = per_group[per_group.map(len) > 1]
    if len(crossing):
        raise SplitError(
            f"{header.get('file', 'the frozen split')}: {len(crossing)} patient(s) in more than one split, "
            f"e.g. {crossing.index[0].partition(':')[2]} ({', '.join(crossing.iloc[0])})"
        )
    split_of_group = per_group.map(lambda s: s[0])

    sample_ids = catalog["sample_id"].astype(str)
    groups = patient_groups(catalog)
    split = sample_ids.map(by_sample)
    known = split.notna()
    by_patient = ~known & groups.isin(split_of_group.index)
    split[by_patient] = groups[by_patient].map(split_of_group)
    new = split.isna()
    if new.any():
        fractions = header.get("fractions") or {}
        if not fractions:
            raise CurateError(f"{header.get('file', 'the frozen split')}: its header records no fractions")
        split[new] = _hashed_split(groups[new], fractions, int(header.get("seed") or 0))
    info = {
        "method": "frozen",
        "frozen": header,
        "kept": int(known.sum()),
        "new_by_patient": int(by_patient.sum()),
        "new_by_hash": int(new.sum()),
        "absent_from_catalog": int((~frozen["sample_id"].astype(str).isin(set(sample_ids))).sum()),
        "catalog_changed": catalog_fingerprint(catalog) != header.get("catalog_fingerprint"),
    }
    return as_split_table(catalog, split, info)

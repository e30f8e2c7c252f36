"""The manifest: the rows a trainer consumes plus a card saying exactly how they were made.

The version id is a content hash of the rows and of the parameters that made them
(recipe, catalog fingerprint, seed), never of the time or of where the data lives,
so building the same manifest twice gives the same id.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curate._io import sha256_file
from curate.catalog import absolute_paths
from curate.errors import CurateError
from curate.select._labels import class_order, label_text
from curate.select.frozen import catalog_fingerprint

__all__ = [
    "FORMAT_VERSION",
    "ROW_COLUMNS",
    "Manifest",
    "build_manifest",
    "version_id",
    "recipe_hash",
    "canonical_json",
]

FORMAT_VERSION = 1

#: Columns every manifest has, in this order; optional ones (``crop``, ``flags``,
#: ``label_quality``, ``is_label_issue``, ``suggested_label``) follow when known.
ROW_COLUMNS: tuple[str, ...] = ("sample_id", "path", "sha256", "label", "split", "patient_id", "weight", "repeat")
_QUALITY_COLUMNS = ("flags",)
_LABEL_COLUMNS = ("label_quality", "is_label_issue", "suggested_label")
_MAX_MISSING = 5


@dataclass
class Manifest:
    """Rows (one per selected sample) and their card.

    Attributes
    ----------
    rows : DataFrame
        :data:`ROW_COLUMNS` plus the flags and scores that were known.
    card : dict
        Name, version, created_at, curate version, recipe and its hash, catalog
        fingerprint, data root, parent, seed, counts, exclusions (see
        ``manifests/card.schema.json``).
    folder : Path, optional
        The version folder in a store, once stored (exports are logged there).
    """

    rows: pd.DataFrame
    card: dict = field(default_factory=dict)
    folder: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def ref(self) -> str:
        """``name@version``, how a manifest is named on the command line."""
        return f"{self.name}@{self.version}"

    def to_frame(self) -> pd.DataFrame:
        """The rows with the card in ``attrs["card"]`` (what :func:`load_manifest` returns)."""
        frame = self.rows.copy()
        frame.attrs["card"] = self.card
        return frame


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces, the text that hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain, allow_nan=False)


def _plain(value: object) -> object:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def jsonable(value: object) -> object:
    """``value`` as plain JSON data: numpy scalars to Python, paths and others to text, NaN to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in (sorted(value, key=str) if isinstance(value, (set, frozenset)) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or value is pd.NA or isinstance(value, (str, int, float, bool)):
        return None if value is pd.NA else value
    return str(value)


def recipe_hash(recipe: dict) -> str:
    """sha256 of the recipe's canonical JSON."""
    return hashlib.sha256(canonical_json(recipe).encode("utf-8")).hexdigest()


def _cell(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return _plain(value) if isinstance(value, (np.generic,)) else value


def rows_hash(rows: pd.DataFrame) -> str:
    """sha256 of the rows as canonical JSON lines (column names included, order kept)."""
    digest = hashlib.sha256(canonical_json(list(map(str, rows.columns))).encode("utf-8"))
    for record in rows.itertuples(index=False, name=None):
        digest.update(b"\n")
        digest.update(canonical_json([_cell(v) for v in record]).encode("utf-8"))
    return digest.hexdigest()


def version_id(rows: pd.DataFrame, parameters: dict) -> str:
    """The version id: 16 hex characters of the hash of the rows and the parameters."""
    key = canonical_json({"rows": rows_hash(rows), "parameters": parameters})
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def build_manifest(
    catalog: pd.DataFrame,
    selection: pd.DataFrame,
    *,
    name: str,
    recipe: dict | None = None,
    quality: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    parent: str | None = None,
    data_root: str | Path | None = None,
    created_at: str | None = None,
) -> Manifest:
    """Build the manifest of the selected rows of ``selection``.

    Parameters
    ----------
    catalog : DataFrame
        The catalog the selection was made from (``attrs["data_root"]`` or ``data_root``
        says where its relative paths live).
    selection : DataFrame
        The table of :func:`curate.select.select`; only ``selected`` rows are kept,
        with their ``weight`` and ``repeat``.
    name : str
        Name of the manifest in the store.
    recipe : dict, optional
        The full recipe that made it (recorded, and hashed into the version id).
    quality : DataFrame, optional
        The quality table: its ``file_sha256`` saves hashing the files again and its
        ``flags`` are kept.
    labels : DataFrame, optional
        The labels table: ``label_quality``, ``is_label_issue`` and ``suggested_label`` are kept.
    parent : str, optional
        ``name@version`` of the manifest this one derives from (the store fills in
        the name's latest version when it is not given).
    data_root : path, optional
        Overrides ``catalog.attrs["data_root"]``.
    created_at : str, optional
        ISO time stamp (default now, UTC); not part of the version id.

    Returns
    -------
    Manifest

    Raises
    ------
    CurateError
        When a selected sample is missing from the catalog, or a file to hash is missing.
    """
    recipe = jsonable(dict(recipe or {}))
    root = data_root if data_root is not None else catalog.attrs.get("data_root")
    if root is None:
        raise CurateError("the catalog has no data root: pass data_root")
    root = str(Path(root).resolve())
    missing_columns = [c for c in ("sample_id", "selected", "split", "weight", "repeat") if c not in selection.columns]
    if missing_columns:
        raise CurateError(f"not a selection table: missing column(s) {', '.join(missing_columns)}")

    chosen = selection[selection["selected"].astype(bool)].copy()
    by_id = catalog.assign(sample_id=catalog["sample_id"].astype("string")).set_index("sample_id")
    unknown = chosen.loc[~chosen["sample_id"].astype("string").isin(by_id.index), "sample_id"]
    if len(unknown):
        raise CurateError(
            f"{len(unknown)} selected sample(s) are not in the catalog, "
            f"e.g. {', '.join(map(str, unknown[:_MAX_MISSING]))}"
        )
    ids = chosen["sample_id"].astype("string")
    source = by_id.loc[ids.to_numpy()]
    rows = pd.DataFrame(
        {
            "sample_id": ids.to_numpy(),
            "path": source["path"].astype("string").to_numpy(),
            "sha256": pd.array([None] * len(chosen), dtype="string"),
            "label": chosen["label"].to_numpy() if "label" in chosen.columns else source["label"].to_numpy(),
            "split": chosen["split"].astype("string").to_numpy(),
            "patient_id": source["patient_id"].astype("string").to_numpy(),
            "weight": chosen["weight"].astype(float).to_numpy(),
            "repeat": chosen["repeat"].astype(np.int64).to_numpy(),
        }
    )
    rows["label"] = _label_dtype(rows["label"])
    if "crop" in source.columns:
        rows["crop"] = source["crop"].astype("string").to_numpy()
    rows["sha256"] = _file_hashes(rows, source, quality, root)
    deid = catalog.attrs.get("deid")
    if deid:
        # a de-identified manifest names no file: the private catalog links sample ids to files
        suffixes = rows["path"].astype(str).map(lambda p: os.path.splitext(p)[1].lower())
        rows["path"] = pd.array(rows["sample_id"].astype(str) + suffixes, dtype="string")
    if quality is not None:
        _join_columns(rows, quality, _QUALITY_COLUMNS)
    if labels is not None:
        _join_columns(rows, labels, _LABEL_COLUMNS)
    rows = rows.reset_index(drop=True)

    record = selection.attrs.get("selection", {})
    seed = jsonable(record.get("seed", recipe.get("seed")))
    parameters = {
        "format": FORMAT_VERSION,
        "recipe_sha256": recipe_hash(recipe),
        "catalog_fingerprint": catalog_fingerprint(catalog),
        "seed": seed,
    }
    from curate import __version__

    card = {
        "format": FORMAT_VERSION,
        "name": name,
        "version": version_id(rows, parameters),
        "created_at": created_at or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "curate_version": __version__,
        "recipe": recipe,
        "recipe_sha256": parameters["recipe_sha256"],
        "catalog_fingerprint": parameters["catalog_fingerprint"],
        "data_root": None if deid else root,
        "deid": jsonable(deid) if deid else None,
        "parent": parent,
        "seed": seed,
        "rows_sha256": rows_hash(rows),
        "samples": int(len(rows)),
        "rows": int(rows["repeat"].sum()),
        "columns": list(map(str, rows.columns)),
        "counts": counts_by_split(rows),
        "exclusions": exclusions_by_reason(selection),
        "selection": jsonable(record),
    }
    return Manifest(rows=rows, card=card)


def _label_dtype(labels: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(labels, errors="coerce")
    if labels.notna().sum() == numeric.notna().sum() and (numeric.dropna() == np.round(numeric.dropna())).all():
        return numeric.astype("Int64")
    return labels.astype("string")


def _file_hashes(rows: pd.DataFrame, source: pd.DataFrame, quality: pd.DataFrame | None, root: str) -> pd.Series:
    """Known hashes first (quality's ``file_sha256``, the catalog's ``sha256``); files hashed for the rest."""
    known = pd.Series(pd.NA, index=rows.index, dtype="string")
    if quality is not None and "file_sha256" in quality.columns:
        by_id = quality.drop_duplicates("sample_id").set_index(quality["sample_id"].drop_duplicates().astype(str))
        known = rows["sample_id"].astype(str).map(by_id["file_sha256"]).astype("string")
    if "sha256" in source.columns:
        known = known.fillna(pd.Series(source["sha256"].astype("string").to_numpy(), index=rows.index))
    todo = known.isna()
    if todo.any():
        paths = absolute_paths(rows.loc[todo], root)
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise CurateError(
                f"{len(missing)} selected file(s) not found under {root}, e.g. {', '.join(missing[:_MAX_MISSING])}"
            )
        cache: dict[str, str] = {}  # two knees of one radiograph share a file
        known[todo] = [cache.setdefault(p, sha256_file(p)) if p not in cache else cache[p] for p in paths]
    return known


def _join_columns(rows: pd.DataFrame, table: pd.DataFrame, columns: tuple[str, ...]) -> None:
    present = [c for c in columns if c in table.columns]
    if not present or "sample_id" not in table.columns:
        return
    by_id = table.drop_duplicates("sample_id").copy()
    by_id.index = by_id["sample_id"].astype(str)
    for column in present:
        values = rows["sample_id"].astype(str).map(by_id[column])
        if column == "is_label_issue":
            values = values.astype("boolean")
        elif column == "label_quality":
            values = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            values = values.astype("string")
        rows[column] = values.to_numpy()


def counts_by_split(rows: pd.DataFrame) -> dict[str, dict[str, dict[str, int]]]:
    """``{split: {class: {"samples": n, "rows": n_with_repeats}}}``, classes in reading order."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    labels = label_text(rows["label"]).fillna("<NA>")
    for split in [s for s in ("train", "val", "test") if (rows["split"] == s).any()] + sorted(
        set(rows["split"].dropna().astype(str)) - {"train", "val", "test"}
    ):
        mask = (rows["split"] == split).fillna(False).to_numpy()
        out[split] = {}
        for label in class_order(labels[mask]):
            hit = mask & (labels == label).to_numpy()
            out[split][label] = {"samples": int(hit.sum()), "rows": int(rows.loc[hit, "repeat"].sum())}
    return out


def exclusions_by_reason(selection: pd.DataFrame) -> dict[str, int]:
    """How many samples each exclusion reason removed (a sample with two reasons counts for both)."""
    if "exclusion_reason" not in selection.columns:
        return {}
    from curate.select.exclusion import reason_names

    from collections import Counter

    counts = Counter(name for names in reason_names(selection["exclusion_reason"]) for name in names)
    return {name: int(counts[name]) for name in sorted(counts)}


def private_paths(manifest, catalog: pd.DataFrame | None) -> tuple[dict[str, str], str]:
    """Sample id -> relative path, and the data root, of a de-identified manifest, from its private catalog.

    Raises
    ------
    CurateError
        No catalog, or one that is not this manifest's.
    """
    if catalog is None:
        raise CurateError(
            f"{manifest.ref} is de-identified: its files are named only in its private catalog; "
            "give it (--catalog, or run the export from its recipe)"
        )
    if catalog_fingerprint(catalog) != manifest.card.get("catalog_fingerprint"):
        raise CurateError(f"the catalog given is not the one {manifest.ref} was made from (fingerprints differ)")
    paths = dict(zip(catalog["sample_id"].astype(str), catalog["path"].astype(str)))
    return paths, catalog.attrs["data_root"]

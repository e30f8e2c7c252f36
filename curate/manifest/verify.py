"""Re-hash a manifest's files and say which are missing or modified."""

from __future__ import annotations

import os
from pathlib import Path

from curate._io import sha256_file
from curate.manifest.model import Manifest, private_paths, rows_hash

__all__ = ["verify_manifest"]


def verify_manifest(manifest: Manifest, data_root: str | os.PathLike | None = None, catalog=None) -> dict:
    """Hash every file of ``manifest`` under its recorded data root (or ``data_root``).

    A de-identified manifest names its files only in its private ``catalog``; a
    problem then names the sample ids and not the file.

    Returns
    -------
    dict
        ``{"ref", "data_root", "files", "ok", "rows", "missing": [...], "modified": [...]}``;
        each problem names the sample ids, the path and (when modified) both hashes;
        ``rows`` says whether the rows are the ones the card describes. ``ok`` is True
        when they are and every file is present and unchanged.
    """
    rows = manifest.rows
    if manifest.card.get("deid"):
        paths, catalog_root = private_paths(manifest, catalog)
        root = Path(data_root if data_root is not None else catalog_root)
        located = rows["sample_id"].astype(str).map(paths)
    else:
        root = Path(data_root if data_root is not None else manifest.card["data_root"])
        located = rows["path"].astype(str)
    rows_problem = rows_mismatch(manifest)
    missing, modified = [], []
    files = rows.groupby(located.fillna(""), sort=True)
    for located_path, group in files:
        path = root / located_path
        relpath = str(group["path"].iloc[0]) if manifest.card.get("deid") else located_path
        expected = str(group["sha256"].iloc[0])
        ids = group["sample_id"].astype(str).tolist()
        if not path.is_file():
            missing.append({"path": relpath, "sample_ids": ids})
            continue
        actual = sha256_file(path)
        if actual != expected:
            modified.append({"path": relpath, "sample_ids": ids, "expected": expected, "actual": actual})
    return {
        "ref": manifest.ref,
        "data_root": str(root),
        "files": int(files.ngroups),
        "ok": not missing and not modified and rows_problem is None,
        "rows": rows_problem or "match the card",
        "missing": missing,
        "modified": modified,
    }


def rows_mismatch(manifest: Manifest) -> str | None:
    """Why the rows are not the ones the card describes (count, hash), or None when they are."""
    card = manifest.card
    rows = manifest.rows
    if "samples" in card and len(rows) != card["samples"]:
        return f"{len(rows):,} samples where the card says {card['samples']:,}"
    if "rows" in card and "repeat" in rows.columns and int(rows["repeat"].sum()) != card["rows"]:
        return f"{int(rows['repeat'].sum()):,} rows with repeats where the card says {card['rows']:,}"
    if card.get("rows_sha256") and rows_hash(manifest.rows) != card["rows_sha256"]:
        return "the rows' sha256 differs from the card's rows_sha256"
    return None

"""Re-hash a manifest's files and say which are missing or modified."""

from __future__ import annotations

import os
from pathlib import Path

from curate._io import sha256_file
from curate.manifest.model import Manifest, rows_hash

__all__ = ["verify_manifest"]


def verify_manifest(manifest: Manifest, data_root: str | os.PathLike | None = None) -> dict:
    """Hash every file of ``manifest`` under its recorded data root (or ``data_root``).

    Returns
    -------
    dict
        ``{"ref", "data_root", "files", "ok", "rows", "missing": [...], "modified": [...]}``;
        each problem names the sample ids, the path and (when modified) both hashes;
        ``rows`` says whether the rows are the ones the card describes. ``ok`` is True
        when they are and every file is present and unchanged.
    """
    root = Path(data_root if data_root is not None else manifest.card["data_root"])
    rows_problem = rows_mismatch(manifest)
    missing, modified = [], []
    files = manifest.rows.groupby(manifest.rows["path"].astype(str), sort=True)
    for relpath, group in files:
        path = root / relpath
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
    if "rows" in card and len(manifest.rows) != card["rows"]:
        return f"{len(manifest.rows):,} rows where the card says {card['rows']:,}"
    if card.get("rows_sha256") and rows_hash(manifest.rows) != card["rows_sha256"]:
        return "the rows' sha256 differs from the card's rows_sha256"
    return None

"""The tables behind a manifest (catalog, quality, selection, labels), found or given.

A manifest holds only its selected rows and their ``flags``. Browsing is more useful with
the side, the duplicate groups, the label probabilities and the excluded samples, which
live in the tables a recipe run leaves in its work folder. They are found there when they
provably belong to the manifest (same catalog fingerprint, same sample ids and file
hashes), or given explicitly; a table that does not match is ignored, never guessed at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["Context", "find_context"]


@dataclass
class Context:
    """Optional tables that enrich a manifest's rows (each ``None`` when not found)."""

    catalog: pd.DataFrame | None = None
    quality: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    selection: pd.DataFrame | None = None


def _work(store: str | os.PathLike | None) -> Path:
    from curate.recipe.runner import default_work

    return default_work(store)



def _covers(table: pd.DataFrame, rows: pd.DataFrame, hash_column: str | None = None) -> bool:
    """Every manifest sample is in ``table`` (with the same file hash when one is given)."""
    if "sample_id" not in table.columns:
        return False
    by_id = table.drop_duplicates("sample_id").set_index(table["sample_id"].drop_duplicates().astype(str))
    ids = rows["sample_id"].astype(str)
    if not ids.isin(by_id.index).all():
        return False
    if hash_column and hash_column in by_id.columns:
        return bool((by_id.loc[ids, hash_column].astype("string").to_numpy() == rows["sha256"].astype("string").to_numpy()).all())
    return True


def _first_covering(paths, reader, rows, hash_column=None) -> pd.DataFrame | None:
    for path in paths:
        try:
            table = reader(path)
        except Exception:
            continue
        if _covers(table, rows, hash_column):
            return table
    return None


def find_context(
    rows: pd.DataFrame,
    store: str | os.PathLike | None = None,
    *,
    catalog: str | os.PathLike | None = None,
    quality: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    selection: str | os.PathLike | None = None,
    discover: bool = True,
) -> Context:
    """Read the given tables and look for the others in the recipe work folder next to ``store``.

    Parameters
    ----------
    rows : DataFrame
        The manifest (``attrs["card"]`` set, as :func:`curate.manifest.load_manifest` returns).
    store : path, optional
        The manifest store (its work folder is ``default_work(store)``).
    catalog, quality, labels, selection : path, optional
        Explicit tables; these are used as given.
    discover : bool
        Look in the work folder for the tables not given.
    """
    from curate.catalog import read_catalog
    from curate.labels.io import read_labels_table
    from curate.quality.io import read_quality
    from curate.select.io import read_selection

    card = rows.attrs.get("card", {})
    found = Context(
        catalog=read_catalog(catalog) if catalog else None,
        quality=read_quality(quality) if quality else None,
        labels=read_labels_table(labels) if labels else None,
        selection=read_selection(selection) if selection else None,
    )
    if not discover:
        return found
    work = _work(store)
    if not work.is_dir():
        return found
    if found.catalog is None:
        from curate.recipe.runner import find_work_catalog

        found.catalog = find_work_catalog(card, work=work)
    if found.quality is None:
        found.quality = _first_covering(sorted(work.glob("scan/*/quality.parquet")), read_quality, rows, "file_sha256")
    if found.labels is None:
        found.labels = _first_covering(sorted(work.glob("labels/*/labels.parquet")), read_labels_table, rows)
    if found.selection is None and card.get("name"):
        wanted = set(rows["sample_id"].astype(str))
        # one folder per run's content (runs/NAME/KEY/): only the run that made this version will do
        for path in sorted((work / "runs" / card["name"]).glob("*/selection.parquet")):
            try:
                table = read_selection(path)
            except Exception:
                continue
            if "selected" in table.columns:
                if set(table.loc[table["selected"].astype(bool), "sample_id"].astype(str)) == wanted:
                    found.selection = table
                    break
    return found

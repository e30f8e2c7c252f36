"""Summaries of tables as plain dicts: printed by the CLI, returned to Python callers."""

from __future__ import annotations

import pandas as pd

__all__ = ["catalog_summary"]

_EXAMPLES = 3


def catalog_summary(catalog: pd.DataFrame, problems: pd.DataFrame | None = None) -> dict:
    """Counts a user checks after an ingest.

    Returns
    -------
    dict
        ``samples``, ``patients``, ``labels`` (label -> count), ``by_split``
        (split -> label -> count, split ``"none"`` when the source has no split),
        ``sides`` and ``problems`` (kind -> count and first examples).
    """
    labels = catalog["label"].astype("string").fillna("<none>")
    split = (
        catalog["official_split"].astype("string").fillna("none")
        if "official_split" in catalog.columns
        else pd.Series("none", index=catalog.index, dtype="string")
    )
    by_split = (
        pd.crosstab(split, labels).reindex(sorted(split.unique(), key=_split_order)).astype(int)
        if len(catalog)
        else pd.DataFrame()
    )
    summary = {
        "samples": int(len(catalog)),
        "patients": int(catalog["patient_id"].nunique(dropna=True)),
        "labels": {str(k): int(v) for k, v in labels.value_counts().sort_index().items()},
        "by_split": {
            str(s): {str(label): int(n) for label, n in row.items()} for s, row in by_split.iterrows()
        },
        "problems": {},
    }
    if "side" in catalog.columns and catalog["side"].notna().any():
        summary["sides"] = {str(k): int(v) for k, v in catalog["side"].value_counts().sort_index().items()}
    if problems is not None and len(problems):
        for kind, group in problems.groupby("kind", sort=True):
            summary["problems"][str(kind)] = {
                "count": int(len(group)),
                "examples": [f"{w}: {d}" for w, d in zip(group["where"][:_EXAMPLES], group["detail"][:_EXAMPLES])],
            }
    return summary


def _split_order(name: str) -> tuple[int, str]:
    order = {"train": 0, "val": 1, "test": 2}
    return order.get(name, 3), name

"""What a person reads after a selection: per split and class, available, excluded by reason, selected."""

from __future__ import annotations

import pandas as pd

from curate.select._labels import class_order, label_text
from curate.select.exclusion import reason_names

__all__ = ["selection_summary", "selection_report"]

_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def selection_summary(selection: pd.DataFrame) -> pd.DataFrame:
    """Counts per split and class.

    Parameters
    ----------
    selection : DataFrame
        A table from :func:`~curate.select.selection.select`.

    Returns
    -------
    DataFrame
        Indexed by (``split``, ``label``), labels as text and rows without a split under
        ``"none"``; columns ``samples`` (in the catalog), ``excluded``, ``available``
        (``samples - excluded``: what the sampler chose from), ``selected`` (distinct
        samples), ``rows`` (with repeats), then ``excluded:<reason>`` per reason (a
        sample with two reasons counts under both, once in ``excluded``).
    """
    frame = pd.DataFrame(
        {
            "split": selection["split"].astype("string").fillna("none").astype(str),
            "label": label_text(selection["label"]).fillna("<NA>").astype(str),
            "excluded": selection["exclusion_reason"].notna().to_numpy(),
            "selected": selection["selected"].astype(bool).to_numpy(),
            "rows": selection["repeat"].astype(int).to_numpy(),
        }
    )
    keys = ["split", "label"]
    table = frame.groupby(keys).agg(
        samples=("excluded", "size"), excluded=("excluded", "sum"), selected=("selected", "sum"), rows=("rows", "sum")
    )
    table["available"] = table["samples"] - table["excluded"]
    names = reason_names(selection["exclusion_reason"]).explode().dropna()
    if len(names):
        by_reason = pd.crosstab([frame.loc[names.index, "split"], frame.loc[names.index, "label"]], names.to_numpy())
        by_reason.columns = [f"excluded:{c}" for c in by_reason.columns]
        by_reason.index.names = keys
        table = table.join(by_reason, how="left").fillna(0)
    order = sorted(table.index, key=lambda k: (_SPLIT_ORDER.get(k[0], 3), k[0], _class_rank(k[1], table)))
    columns = ["samples", "excluded", "available", "selected", "rows"]
    columns += sorted(c for c in table.columns if c.startswith("excluded:"))
    return table.loc[order, columns].astype(int)


def _class_rank(label: str, table: pd.DataFrame) -> int:
    labels = class_order(table.index.get_level_values("label"))
    return labels.index(label)


def selection_report(selection: pd.DataFrame) -> dict:
    """The summary and the selection's record as plain values (printed by the CLI, JSON-ready).

    Returns
    -------
    dict
        ``samples``, ``selected``, ``rows``, ``by_split`` (split -> class -> counts of
        :func:`selection_summary`, with ``excluded_by`` reason -> count), ``totals``
        (split -> counts), ``excluded_by`` (reason -> count over all splits) and the
        selection's record (``sampler``, ``seed``, ``split``, ``split_check``,
        ``exclusion``, ``class_weights``, ``notes``...).
    """
    summary = selection_summary(selection)
    reason_columns = [c for c in summary.columns if c.startswith("excluded:")]
    by_split: dict[str, dict[str, dict]] = {}
    for (split, label), row in summary.iterrows():
        counts = {k: int(row[k]) for k in ("samples", "excluded", "available", "selected", "rows")}
        counts["excluded_by"] = {c.removeprefix("excluded:"): int(row[c]) for c in reason_columns if row[c]}
        by_split.setdefault(split, {})[label] = counts
    totals = summary.groupby(level="split", sort=False).sum()
    return {
        "samples": int(len(selection)),
        "selected": int(selection["selected"].sum()),
        "rows": int(selection["repeat"].sum()),
        "by_split": by_split,
        "totals": {
            s: {k: int(v) for k, v in row.items() if not k.startswith("excluded:")} for s, row in totals.iterrows()
        },
        "excluded_by": {c.removeprefix("excluded:"): int(summary[c].sum()) for c in reason_columns},
        **selection.attrs.get("selection", {}),
    }

"""Score a quality table against known faults (the demo's ``faults.csv``, or a user's audit).

For every fault type the scan is meant to catch: recall (injected faults found)
and precision (flags that point at a real fault). Duplicates count as found when
the copy lands in the same group as its source; leakage when a copy of a file
from another split is flagged as crossing splits.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["SCAN_FAULTS", "score_scan"]

#: Fault in faults.csv -> what in the quality table reports it.
SCAN_FAULTS: dict[str, tuple[str, str]] = {
    "exact_duplicate": ("group", ""),
    "near_duplicate": ("group", ""),
    "dark": ("flag", "dark"),
    "overexposed": ("flag", "overexposed"),
    "blurred": ("flag", "blurred"),
    "blank": ("flag", "blank"),
    "truncated": ("error", "truncated"),
    "zero_bytes": ("error", "zero_bytes"),
    "not_an_image": ("error", "not_an_image"),
    "dicom_laterality_mismatch": ("flag", "laterality_mismatch"),
    "wrong_modality": ("flag", "wrong_modality"),
    "leakage": ("flag", "duplicate_cross_split"),
}
# A flag on a file whose fault implies it is not a false alarm (an all-black blank image is dark).
_IMPLIED = {"dark": {"blank"}, "overexposed": {"blank"}}
_SOURCE = re.compile(r"(?:copy|[a-z_0-9]+) of (?P<source>[^\s;]+)")


def _source_of(details: str) -> str | None:
    match = _SOURCE.search(str(details))
    return match["source"] if match else None


def score_scan(quality: pd.DataFrame, faults: pd.DataFrame, catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recall and precision of the scan for every fault type it is meant to catch.

    Parameters
    ----------
    quality : DataFrame
        The scan's table (``path``, ``flag_*``, ``error``, ``dup_group``).
    faults : DataFrame
        Columns ``file`` (a catalog path), ``fault`` and ``details``; duplicates
        name their source as ``"... of <path>"``.
    catalog : DataFrame, optional
        With ``official_split``, to know which duplicates leak across splits.

    Returns
    -------
    DataFrame
        One row per fault type: ``injected``, ``found``, ``flagged``, ``correct``,
        ``recall``, ``precision``.
    """
    q = quality.set_index("path")
    split = catalog.set_index("path")["official_split"] if catalog is not None and "official_split" in catalog else None
    faults = faults.assign(source=faults["details"].map(_source_of))
    dup_faults = faults[faults["fault"].isin(["exact_duplicate", "near_duplicate"])]
    if split is not None:
        crossing = dup_faults[dup_faults["file"].map(split) != dup_faults["source"].map(split)]
        faults = pd.concat([faults, crossing.assign(fault="leakage")], ignore_index=True)
    fault_of = faults.groupby("file")["fault"].agg(set)
    group = q["dup_group"]

    rows = []
    for fault, (kind, name) in SCAN_FAULTS.items():
        truth = faults.loc[faults["fault"] == fault]
        if kind == "group":
            same = [
                pd.notna(group.get(f)) and group.get(f) == group.get(s) for f, s in zip(truth["file"], truth["source"])
            ]
            found = int(sum(same))
            members = set(dup_faults["file"]) | set(dup_faults["source"].dropna())
            flagged_paths = set(q.index[group.notna()])
            correct = len(flagged_paths & members)
        else:
            mask = q[f"flag_{name}"].astype(bool) if kind == "flag" and f"flag_{name}" in q else q["error"].eq(name).fillna(False)
            flagged_paths = set(q.index[mask.to_numpy()])
            expected = set(truth["file"])
            if fault == "leakage":
                expected_or_source = expected | set(truth["source"].dropna())
                found = len(expected & flagged_paths)
                correct = len(flagged_paths & expected_or_source)
            else:
                implied = {f for f, kinds in fault_of.items() if kinds & _IMPLIED.get(fault, set())}
                found = len(expected & flagged_paths)
                correct = len(flagged_paths & (expected | implied))
        injected = len(truth)
        rows.append(
            {
                "fault": fault,
                "injected": injected,
                "found": found,
                "flagged": len(flagged_paths),
                "correct": correct,
                "recall": found / injected if injected else float("nan"),
                "precision": correct / len(flagged_paths) if flagged_paths else float("nan"),
            }
        )
    return pd.DataFrame(rows)

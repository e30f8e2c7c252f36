"""What a person reads after a scan: counts per flag, per reason, and the leakage report."""

from __future__ import annotations

import pandas as pd

from curate.quality.checks import patient_leakage

__all__ = ["quality_summary"]

_EXAMPLES = 3


def quality_summary(quality: pd.DataFrame, catalog: pd.DataFrame | None = None) -> dict:
    """Counts per flag (with example reasons), duplicate groups and leakage.

    Returns
    -------
    dict
        ``samples``, ``readable``, ``flags`` (flag -> count, examples),
        ``errors`` (decode reason -> count), ``duplicates`` (groups, redundant
        samples, label conflicts, groups crossing splits) and ``leakage``
        (patients in several splits).
    """
    flag_columns = [c for c in quality.columns if c.startswith("flag_")]
    flags = {}
    for column in flag_columns:
        mask = quality[column].astype(bool)
        if not mask.any():
            continue
        name = column.removeprefix("flag_")
        reasons = quality.loc[mask, "reasons"].astype(str)
        examples = [
            f"{path}: {_reason_of(name, text)}" for path, text in zip(quality.loc[mask, "path"][:_EXAMPLES], reasons[:_EXAMPLES])
        ]
        flags[name] = {"count": int(mask.sum()), "examples": examples}
    errors = quality.loc[~quality["readable"].astype(bool), "error"].value_counts().sort_index()
    groups = quality.dropna(subset=["dup_group"])
    summary = {
        "samples": int(len(quality)),
        "readable": int(quality["readable"].astype(bool).sum()),
        "flags": dict(sorted(flags.items(), key=lambda kv: -kv[1]["count"])),
        "errors": {str(k): int(v) for k, v in errors.items()},
        "duplicates": {
            "groups": int(groups["dup_group"].nunique()),
            "groups_with_near_members": int(groups.loc[groups["dup_kind"] == "near", "dup_group"].nunique()),
            "redundant_samples": int((~groups["dup_keep"].astype(bool)).sum()),
            "label_conflict_groups": int(groups.loc[groups["dup_label_conflict"].astype(bool), "dup_group"].nunique()),
            "cross_split_groups": int(groups.loc[groups["dup_cross_split"].astype(bool), "dup_group"].nunique()),
        },
    }
    if catalog is not None:
        leaks = patient_leakage(catalog)
        summary["leakage"] = {
            "patients_in_several_splits": int(len(leaks)),
            "examples": [f"patient {p}: {s}" for p, s in zip(leaks["patient_id"][:_EXAMPLES], leaks["splits"][:_EXAMPLES])],
        }
    return summary


def _reason_of(name: str, reasons: str) -> str:
    """The reason of flag ``name`` within a row's ``"flag: reason; flag: reason"`` text."""
    prefix = f"{name}: "
    return next((p.removeprefix(prefix) for p in reasons.split("; ") if p.startswith(prefix)), reasons)

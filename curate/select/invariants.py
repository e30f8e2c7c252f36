"""The invariants every split must keep, checked on every result.

1. No patient in two splits.
2. Every class in every split, when it is possible: a class held by fewer
   patients than there are splits cannot be, and that is reported as a note.
3. For a split made with fractions, each split's share of the samples within
   a stated tolerance of its fraction: 0.02 plus what whole patients force
   (see :func:`proportion_tolerance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from curate.select._labels import class_order, label_text
from curate.select.errors import SplitError
from curate.select.splits import patient_groups

__all__ = ["DEFAULT_TOLERANCE", "SplitCheck", "check_split", "proportion_tolerance"]

#: Allowed difference between a split's share of the samples and its fraction,
#: on top of what whole patients force (see :func:`proportion_tolerance`).
DEFAULT_TOLERANCE = 0.02

_LISTED = 5


@dataclass(frozen=True)
class SplitCheck:
    """What :func:`check_split` found.

    Attributes
    ----------
    violations : tuple of str
        Broken invariants, one sentence each.
    notes : tuple of str
        What could not be done and why (a class too rare to be in every split).
    shares : dict
        Split -> its share of the samples.
    """

    violations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    shares: Mapping[str, float] | None = None

    @property
    def ok(self) -> bool:
        """True when no invariant is broken."""
        return not self.violations

    def raise_for_violations(self) -> None:
        """Raise :class:`SplitError` listing the violations, if any."""
        if self.violations:
            raise SplitError("the split breaks its invariants: " + "; ".join(self.violations))

    def to_dict(self) -> dict:
        return {"violations": list(self.violations), "notes": list(self.notes), "shares": dict(self.shares or {})}


def proportion_tolerance(
    split_table: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE, *, splits: int | None = None
) -> float:
    """The tolerance on each split's share: ``tolerance + (splits - 1) x classes x largest patient / samples``.

    Whole patients move together, and every class is first placed in every split:
    that can put one patient per class beyond a small split's target, and take as
    many from each of the others. On a large catalog the second term vanishes
    (2 x 5 grades x 2 knees / 5,778 images = 0.0035); on a tiny one it is what whole
    patients allow.

    Parameters
    ----------
    split_table : DataFrame
        ``sample_id``, ``patient_id``, ``label``, ``split``.
    tolerance : float
        The part that does not depend on the catalog.
    splits : int, optional
        Number of splits (default: those in the table).
    """
    rows = split_table[split_table["split"].notna()]
    if rows.empty:
        return tolerance
    splits = rows["split"].nunique() if splits is None else splits
    largest = int(patient_groups(rows).value_counts().max())
    classes = label_text(rows["label"]).fillna("<NA>").nunique()
    return tolerance + max(splits - 1, 1) * classes * largest / len(rows)


def check_split(
    split_table: pd.DataFrame,
    *,
    fractions: Mapping[str, float] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    require_every_class: bool = True,
) -> SplitCheck:
    """Check the split invariants.

    Parameters
    ----------
    split_table : DataFrame
        ``sample_id``, ``patient_id``, ``label`` and ``split``; rows without a
        split are left out.
    fractions : mapping, optional
        The asked fractions; when given, the splits' shares are checked against
        them (with :func:`proportion_tolerance`) and every split named there must exist.
    tolerance : float
        See :func:`proportion_tolerance`.
    require_every_class : bool
        When False, a class missing from a split where it could be is a note, not
        a violation (for official splits, which are not ours to change).

    Returns
    -------
    SplitCheck
    """
    rows = split_table[split_table["split"].notna()]
    split = rows["split"].astype(str)
    violations: list[str] = []
    notes: list[str] = []
    names = list(fractions) if fractions else sorted(split.unique(), key=_split_order)

    groups = patient_groups(rows)
    per_patient = split.groupby(groups).agg(lambda s: sorted(set(s), key=_split_order))
    crossing = per_patient[per_patient.map(len) > 1]
    if len(crossing):
        shown = ", ".join(f"{_patient(g)} ({', '.join(s)})" for g, s in crossing.head(_LISTED).items())
        more = f" and {len(crossing) - _LISTED} more" if len(crossing) > _LISTED else ""
        violations.append(f"{len(crossing)} patient(s) in more than one split: {shown}{more}")

    labels = label_text(rows["label"])
    for name in class_order(labels.dropna()):
        of_class = labels == name
        present = set(split[of_class])
        missing = [s for s in names if s not in present]
        if not missing:
            continue
        holders = groups[of_class].nunique()
        where = ", ".join(sorted(present, key=_split_order))
        if holders < len(names):
            notes.append(
                f"class {name} has {holders} patient(s), too few to be in all {len(names)} splits (it is in {where})"
            )
        elif require_every_class:
            violations.append(f"class {name} is missing from {', '.join(missing)} though {holders} patients hold it")
        else:
            notes.append(f"class {name} is missing from {', '.join(missing)} (it is in {where})")

    shares = (split.value_counts() / max(len(rows), 1)).to_dict()
    shares = {s: float(shares.get(s, 0.0)) for s in names}
    if fractions:
        allowed = proportion_tolerance(rows, tolerance, splits=len(fractions))
        for name, wanted in fractions.items():
            if abs(shares[name] - wanted) > allowed:
                violations.append(
                    f"split {name} holds {shares[name]:.3f} of the samples, {wanted:g} asked (tolerance {allowed:.3f})"
                )
    return SplitCheck(violations=tuple(violations), notes=tuple(notes), shares=shares)


def _patient(group: str) -> str:
    kind, _, value = group.partition(":")
    return f"patient {value}" if kind == "patient" else f"sample {value}"


def _split_order(name: str) -> tuple[int, str]:
    order = {"train": 0, "val": 1, "test": 2}
    return order.get(name, 3), name

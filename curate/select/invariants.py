"""The invariants every split must keep, checked on every result.

1. No patient in two splits.
2. Every class in every split, when it is possible. A class held by fewer
   patients than there are splits cannot be; nor can some classes together,
   when the patients holding them cannot be divided so that every split has
   them all (patients a, b and c holding classes 0+1, 1+2 and 0+2 make only two
   of those classes fit in both of two splits). Those are notes saying why; a
   class missing from a split is a violation only when another split could have
   it in every split along with every class the checked one has everywhere.
3. For a split made with fractions, each split's share of the samples within
   a stated tolerance of its fraction: 0.02 plus what whole patients force
   (see :func:`proportion_tolerance`). Whole patients never make that
   impossible, even with every class that can be everywhere placed first (see
   :func:`curate.select.splits.make_split`), so a share beyond it is always a violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from curate.select._labels import class_order, label_text
from curate.select.errors import SplitError
from curate.select.splits import (
    DEFAULT_TOLERANCE,
    _cover_every_split,
    _SearchLimit,
    _share_tolerance,
    patient_groups,
)

__all__ = ["DEFAULT_TOLERANCE", "SplitCheck", "check_split", "proportion_tolerance"]

_LISTED = 5


@dataclass(frozen=True)
class SplitCheck:
    """What :func:`check_split` found.

    Attributes
    ----------
    violations : tuple of str
        Broken invariants, one sentence each.
    notes : tuple of str
        What could not be done and why (a class that cannot be in every split).
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
    return _share_tolerance(splits, classes, largest, len(rows), tolerance)


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
    n_splits_of = split.groupby(groups).nunique()
    crossing = n_splits_of[n_splits_of > 1].sort_index()
    if len(crossing):
        shown = ", ".join(
            f"{_patient(g)} ({', '.join(sorted(set(split[groups == g]), key=_split_order))})"
            for g in crossing.index[:_LISTED]
        )
        more = f" and {len(crossing) - _LISTED} more" if len(crossing) > _LISTED else ""
        violations.append(f"{len(crossing)} patient(s) in more than one split: {shown}{more}")

    labels = label_text(rows["label"])
    missing_from: dict[str, list[str]] = {}
    for name in class_order(labels.dropna()):
        present = set(split[labels == name])
        missing = [s for s in names if s not in present]
        if missing:
            missing_from[name] = missing
    holders = groups.groupby(labels).nunique() if missing_from else None
    # A class with patients enough is owed unless it cannot join those already everywhere: a search each.
    owed = [c for c in missing_from if holders[c] >= len(names)] if require_every_class else []
    coverage = _Coverage(groups, labels, split, names) if owed else None
    for name, missing in missing_from.items():
        where = ", ".join(sorted(set(split[labels == name]), key=_split_order))
        if holders[name] < len(names):
            notes.append(
                f"class {name} has {holders[name]} patient(s), too few to be in all {len(names)} splits "
                f"(it is in {where})"
            )
        elif not require_every_class:
            notes.append(f"class {name} is missing from {', '.join(missing)} (it is in {where})")
        else:
            why = coverage.why_not(name)
            if why is None:
                violations.append(
                    f"class {name} is missing from {', '.join(missing)} though {holders[name]} patients hold it"
                )
            else:
                notes.append(f"class {name} is missing from {', '.join(missing)}: {why} (it is in {where})")

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


class _Coverage:
    """Which classes can be in every split together, from who holds what (a split table's rows)."""

    def __init__(self, groups: pd.Series, labels: pd.Series, split: pd.Series, names: list[str]) -> None:
        self.n_splits = len(names)
        holds = pd.crosstab(groups, labels) > 0  # missing labels drop out
        holds = holds.loc[:, holds.sum() >= self.n_splits]
        self.holds = holds
        # the classes the split has everywhere: a missing class must join them to be owed
        in_split = pd.crosstab(labels, split).reindex(columns=names, fill_value=0)
        self.everywhere = [c for c in class_order(holds.columns) if (in_split.loc[c] > 0).all()]
        self.steps: int | None = None  # of a search that gave up

    def _can_all_be_everywhere(self, classes: list[str]) -> bool | None:
        """True or False; None when the search gave up."""
        try:
            return _cover_every_split(self.holds[classes].to_numpy(), self.n_splits) is not None
        except _SearchLimit as limit:
            self.steps = limit.steps
            return None

    def why_not(self, name: str) -> str | None:
        """Why class ``name`` cannot be in every split along with :attr:`everywhere`; None when it can."""
        answer = self._can_all_be_everywhere([*self.everywhere, name])
        if answer:
            return None
        if answer is None:  # nothing shows a better split exists: accepted, and the note says so
            return (
                f"no split putting it in every split along with {_classes(self.everywhere)} "
                f"was found in a search of {self.steps:,} steps"
            )
        # The fewest classes that already make it impossible (a deletion filter): what a user can check.
        core = list(self.everywhere)
        for other in list(core):
            if self._can_all_be_everywhere([c for c in core if c != other] + [name]) is False:
                core.remove(other)
        classes = class_order([*core, name])
        patients = self.holds.index[self.holds[classes].any(axis=1)]
        shown = ", ".join(_short(g) for g in patients[:_LISTED])
        more = f" and {len(patients) - _LISTED} more" if len(patients) > _LISTED else ""
        return (
            f"{_classes(classes)} cannot all be in every split, as the {len(patients)} patients holding them "
            f"({shown}{more}) cannot be divided so that each of the {self.n_splits} splits has them all"
        )


def _classes(names: list[str]) -> str:
    if len(names) == 1:
        return f"class {names[0]}"
    return f"classes {', '.join(names[:-1])} and {names[-1]}"


def _patient(group: str) -> str:
    kind, _, value = group.partition(":")
    return f"patient {value}" if kind == "patient" else f"sample {value}"


def _short(group: str) -> str:
    kind, _, value = group.partition(":")
    return value if kind == "patient" else f"sample {value}"


def _split_order(name: str) -> tuple[int, str]:
    order = {"train": 0, "val": 1, "test": 2}
    return order.get(name, 3), name

"""Which samples never reach a training set, each with the reason a person reads.

The rules are names: a quality flag (``flag_<name>`` in the quality table) or
``label_issue`` (a finding of the labels table). A sample matching several rules
keeps every reason, joined by ``"; "``::

    exact_duplicate; label_issue (given 0, suggested 3)

Rules whose table was not given are not checked and are reported as such; a
name that is neither a rule of the defaults nor a flag of the given quality
table is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from curate.errors import CurateError
from curate.select._align import align_labels, align_quality

__all__ = [
    "DEFAULT_EXCLUDE",
    "LABEL_ISSUE",
    "DEFAULT_MIN_GRADE_DISTANCE",
    "resolve_exclusions",
    "exclusion_reasons",
    "reason_names",
]

LABEL_ISSUE = "label_issue"

#: Excluded by default: unreadable, redundant members of duplicate groups (the
#: flags are set only on members that are not kept), blank, wrong modality or
#: body part, and label issues at least :data:`DEFAULT_MIN_GRADE_DISTANCE` grades off.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    "unreadable",
    "exact_duplicate",
    "near_duplicate",
    "blank",
    "wrong_modality",
    "wrong_body_part",
    LABEL_ISSUE,
)

#: A label issue excludes a sample when given and suggested grades are this far apart.
#: Adjacent KL grades (1 vs 2) are where expert readers disagree: not a reason to drop.
DEFAULT_MIN_GRADE_DISTANCE = 2


def resolve_exclusions(
    exclude: Iterable[str] | None = None, *, add: Iterable[str] = (), keep: Iterable[str] = ()
) -> tuple[str, ...]:
    """The exclusion rules: ``exclude`` (default :data:`DEFAULT_EXCLUDE`) plus ``add`` minus ``keep``.

    Raises
    ------
    CurateError
        When ``keep`` names a rule that is not in the list.

    Examples
    --------
    >>> resolve_exclusions(add=["dark"], keep=["near_duplicate", "wrong_body_part"])
    ('unreadable', 'exact_duplicate', 'blank', 'wrong_modality', 'label_issue', 'dark')
    """
    rules = list(DEFAULT_EXCLUDE if exclude is None else exclude)
    rules += [name for name in add if name not in rules]
    for name in keep:
        if name not in rules:
            raise CurateError(f"cannot keep {name!r}: it is not excluded (excluded: {', '.join(rules) or 'nothing'})")
        rules.remove(name)
    return tuple(dict.fromkeys(rules))


#: The reason of a sample a reviewer excluded (tag ``exclude`` in the review file).
REVIEW_EXCLUDE = "review: exclude"


def exclusion_reasons(
    catalog: pd.DataFrame,
    *,
    quality: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    exclude: Iterable[str] | None = None,
    min_grade_distance: int | None = DEFAULT_MIN_GRADE_DISTANCE,
    reviewed_out: Iterable[str] = (),
) -> pd.Series:
    """The exclusion reason of every catalog sample.

    Parameters
    ----------
    catalog : DataFrame
        A validated catalog.
    quality : DataFrame, optional
        The quality table of the scan (``sample_id`` and ``flag_<name>`` columns).
    labels : DataFrame, optional
        The labels table (``sample_id``, ``is_label_issue``, and when known
        ``grade_distance``, ``given_label``, ``suggested_label``).
    exclude : iterable of str, optional
        Rule names; default :data:`DEFAULT_EXCLUDE`.
    min_grade_distance : int or None
        A label issue excludes when ``grade_distance`` is at least this; None, or a
        missing distance (labels that are not ordinal grades), makes every issue count.
    reviewed_out : iterable of str
        Sample ids a reviewer excluded (reason :data:`REVIEW_EXCLUDE`); always applied.

    Returns
    -------
    Series
        ``exclusion_reason`` (text, ``<NA>`` for kept samples), in catalog order.
        ``attrs["rules"]`` lists the rules applied, ``attrs["not_checked"]`` the
        rules skipped with why.

    Raises
    ------
    CurateError
        For an unknown rule name, a quality flag asked without a quality table,
        or a quality table that misses catalog samples.
    """
    if min_grade_distance is not None and (
        isinstance(min_grade_distance, bool) or not isinstance(min_grade_distance, int) or min_grade_distance < 0
    ):
        raise CurateError(f"min_grade_distance must be a whole number >= 0 or None, not {min_grade_distance!r}")
    rules = resolve_exclusions(exclude)
    aligned_quality = align_quality(catalog, quality) if quality is not None else None
    flag_names = (
        {c.removeprefix("flag_") for c in aligned_quality.columns if c.startswith("flag_")}
        if aligned_quality is not None
        else set()
    )
    masks: dict[str, pd.Series] = {}
    texts: dict[str, pd.Series | str] = {}
    not_checked: dict[str, str] = {}
    for name in rules:
        if name == LABEL_ISSUE:
            if labels is None:
                not_checked[name] = "no labels table"
                continue
            masks[name], texts[name] = _label_issues(catalog, labels, min_grade_distance)
        elif name in flag_names:
            masks[name] = aligned_quality[f"flag_{name}"].fillna(False).astype(bool)
            texts[name] = name
        elif name in DEFAULT_EXCLUDE:
            not_checked[name] = "no quality table" if aligned_quality is None else "not checked by this scan"
        elif aligned_quality is None:
            raise CurateError(f"excluding by flag {name!r} needs a quality table (--quality FILE)")
        else:
            known = sorted(flag_names | {LABEL_ISSUE})
            raise CurateError(f"unknown flag name {name!r}; the quality table has: {', '.join(known)}")

    reviewed_out = set(map(str, reviewed_out))
    if reviewed_out:
        masks["review"] = catalog["sample_id"].astype(str).isin(reviewed_out)
        texts["review"] = REVIEW_EXCLUDE
    reasons = pd.Series("", index=catalog.index, dtype=object)
    for name, mask in masks.items():
        text = texts[name]
        piece = text[mask] if isinstance(text, pd.Series) else pd.Series(text, index=mask.index[mask])
        reasons[mask] = reasons[mask] + "; " + piece.astype(str)
    reasons = reasons.str.removeprefix("; ").astype("string")
    reasons = reasons.mask(reasons == "")
    reasons.name = "exclusion_reason"
    reasons.attrs = {
        "rules": [r for r in rules if r in masks] + (["review"] if reviewed_out else []),
        "not_checked": not_checked,
        "min_grade_distance": min_grade_distance,
    }
    return reasons


def _label_issues(
    catalog: pd.DataFrame, labels: pd.DataFrame, min_grade_distance: int | None
) -> tuple[pd.Series, pd.Series]:
    table = align_labels(catalog, labels)
    if "is_label_issue" not in table.columns:
        raise CurateError("the labels table has no is_label_issue column")
    issue = table["is_label_issue"].astype("boolean").fillna(False).astype(bool)
    if min_grade_distance is not None and "grade_distance" in table.columns:
        distance = pd.to_numeric(table["grade_distance"], errors="coerce")
        far = (distance >= min_grade_distance).astype("boolean").fillna(True).astype(bool)
        issue &= far
    given = table["given_label"] if "given_label" in table.columns else catalog["label"]
    suggested = table["suggested_label"] if "suggested_label" in table.columns else pd.Series(pd.NA, index=table.index)
    text = "label_issue (given " + _show(given) + ", suggested " + _show(suggested) + ")"
    return issue, text


def _show(values: pd.Series) -> pd.Series:
    # a table aligned with gaps turns integer grades into floats: show 3, not 3.0
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum() and (numeric.dropna() % 1 == 0).all():
        values = numeric.astype("Int64")
    return values.astype("string").fillna("?").astype(str)


def reason_names(reasons: pd.Series) -> pd.Series:
    """The rule names of each reason text (``"label_issue (given 0, suggested 3)"`` -> ``label_issue``).

    Returns
    -------
    Series
        Lists of names, empty for kept samples.

    Examples
    --------
    >>> reason_names(pd.Series(["exact_duplicate; label_issue (given 0, suggested 3)", None])).tolist()
    [['exact_duplicate', 'label_issue'], []]
    """
    return reasons.map(
        lambda text: [] if pd.isna(text) else [part.split(" (", 1)[0].strip() for part in str(text).split("; ")]
    )

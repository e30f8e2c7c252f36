"""Tasks: which training label a multi-label catalog gives, and which images it keeps.

The multi-label loaders (``nih-cxr14``, ``chexpert``, ``mimic-cxr``,
``covid-chestxray``, ``rsna-pneumonia``) keep the raw findings of every image
(``findings``, ``findings_uncertain``, see :mod:`curate.loaders._multilabel`). A
:class:`Task` turns them into the ``label`` a model is trained on, so the same
catalog serves many tasks without ingesting again. A task is written as a plain
dict (a recipe's ``task:`` section)::

    target: binary            # binary | one_vs_rest | multiclass
    findings: [Pneumonia]
    negative: No Finding      # binary/one_vs_rest: "No Finding" or "rest"
    uncertain: ignore         # ignore | positive | negative | drop
    frontal_only: true        # or views: [PA]
    one_per_patient: false
    neutral_findings: [Support Devices]

Targets
-------
``binary``
    one finding: ``label`` 1 for the images that have it (whatever else they show),
    0 for the negatives. ``negative: No Finding`` takes as negatives only the images
    without any finding and leaves out images with other findings;
    ``negative: rest`` takes every other image.
``one_vs_rest``
    several findings, one yes/no label each (multi-label training): a column
    ``task_<finding>`` (1/0, NA for an ignored uncertain label) per finding, and
    ``label`` the findings present joined by ``|``, or the negative (``No Finding``
    or ``rest``) when none is. ``negative`` selects the images as for ``binary``.
``multiclass``
    two or more findings, one class each (``No Finding`` may be one): ``label`` is the
    one target finding an image has. Images with several target findings, or none,
    are left out.

A finding matches its sub-findings after ``/``: ``Pneumonia/Viral`` matches
``Pneumonia/Viral/COVID-19`` (the covid-chestxray hierarchy). An image "has no
finding" when it has none besides the task's ``neutral_findings`` (e.g. ``Support
Devices``, which CheXpert lists but does not count against ``No Finding``).

Uncertain labels
----------------
``ignore`` (default) and ``negative`` treat an uncertain finding as absent, so they
give the same ``label``; they differ in the ``task_<finding>`` columns of
``one_vs_rest`` tasks, where ``ignore`` writes NA (a loss can mask it, as in
CheXpert's "U-Ignore") and ``negative`` 0. ``positive`` treats it as present.
``drop`` leaves out the images whose label would change if their uncertain
findings were present.

Views and patients
------------------
``views`` keeps the images of the listed (normalized) views; ``frontal_only`` keeps
PA, AP and FRONTAL; an image of unknown view is left out by either. With
``one_per_patient``, of each patient's remaining images the one with the earliest
``visit`` (numerically when every visit is a number, else as text; images without
visit last) is kept, ties broken by the smallest ``sample_id``; images without
patient are left out.

Every image a task leaves out is one row of the problems table (``kind``, ``where``
= its path, ``detail``): ``no_findings``, ``excluded_view``, ``other_finding``,
``no_target_finding``, ``several_target_findings``, ``uncertain_label``,
``no_patient_id``, ``other_image_of_patient``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd

from curate.catalog import validate_catalog
from curate.errors import CurateError
from curate.loaders._multilabel import (
    FRONTAL_VIEWS,
    NO_FINDING,
    SEPARATOR,
    VIEWS,
    normalize_view,
    snake_case,
    split_findings,
)
from curate.loaders.base import problems_table

__all__ = [
    "Task",
    "TaskError",
    "TARGETS",
    "UNCERTAIN_POLICIES",
    "NEGATIVES",
    "apply_task",
    "catalog_findings",
    "task_column",
]

TARGETS: tuple[str, ...] = ("binary", "one_vs_rest", "multiclass")
UNCERTAIN_POLICIES: tuple[str, ...] = ("ignore", "positive", "negative", "drop")
NEGATIVES: tuple[str, ...] = (NO_FINDING, "rest")
# "/" between two words is a level of a hierarchy; " / " (RSNA's "No Lung Opacity / Not Normal") is not.
_LEVEL_RE = re.compile(r"(?<=\S)/(?=\S)")


class TaskError(CurateError):
    """A task definition that is not valid, or that does not fit the catalog."""


@dataclass(frozen=True)
class Task:
    """How a multi-label catalog becomes training labels (see the module's doc).

    Build it with :meth:`from_dict`; every field is checked, with one-line errors.

    >>> task = Task.from_dict({"target": "binary", "findings": ["Pneumonia"], "negative": "No Finding"})
    >>> task.findings, task.uncertain
    (('Pneumonia',), 'ignore')
    """

    target: str
    findings: tuple[str, ...]
    negative: str | None = None
    uncertain: str = "ignore"
    views: tuple[str, ...] = ()
    frontal_only: bool = False
    one_per_patient: bool = False
    neutral_findings: tuple[str, ...] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalized values are set once, here
        set_(self, "name", _optional_name(self.name))
        set_(self, "target", _choice(self, "target", self.target, TARGETS))
        set_(self, "findings", _names(self, "findings", self.findings))
        set_(self, "neutral_findings", _names(self, "neutral_findings", self.neutral_findings))
        # Views are compared normalized, as the loaders write them ("L" -> LATERAL).
        set_(self, "views", tuple(normalize_view(v) for v in _names(self, "views", self.views)))
        set_(self, "uncertain", _choice(self, "uncertain", self.uncertain, UNCERTAIN_POLICIES))
        for key in ("frontal_only", "one_per_patient"):
            if not isinstance(getattr(self, key), bool):
                raise self._error(f"'{key}' must be true or false, got {getattr(self, key)!r}")
        self._check_target()
        if self.views and self.frontal_only:
            raise self._error("give 'views' or 'frontal_only', not both")
        if NO_FINDING in self.neutral_findings:
            raise self._error(f"'neutral_findings' cannot hold {NO_FINDING!r}")
        both = sorted(set(self.neutral_findings) & set(self.findings))
        if both:
            raise self._error(f"{', '.join(map(repr, both))} is both a target and a neutral finding")

    def _check_target(self) -> None:
        if not self.findings:
            raise self._error("'findings' is empty")
        if self.target == "multiclass":
            if self.negative is not None:
                raise self._error(f"a multiclass task takes no 'negative'; list {NO_FINDING!r} among its findings")
            if len(self.findings) < 2:
                raise self._error(f"a multiclass task needs two findings or more, got {len(self.findings)}")
            for a in self.findings:
                for b in self.findings:
                    if a != b and b.startswith(a + "/"):
                        raise self._error(f"classes {a!r} and {b!r} overlap ({b!r} is a kind of {a!r})")
            return
        if self.negative is None:
            raise self._error(f"a {self.target} task needs 'negative': {NO_FINDING!r} or 'rest'")
        negative = {n.lower(): n for n in NEGATIVES}.get(str(self.negative).strip().lower())
        if negative is None:
            raise self._error(f"'negative' is {self.negative!r}, expected {NO_FINDING!r} or 'rest'")
        object.__setattr__(self, "negative", negative)
        if self.target == "binary" and len(self.findings) != 1:
            raise self._error(f"a binary task has one finding, got {len(self.findings)}: {', '.join(self.findings)}")
        if NO_FINDING in self.findings and negative == NO_FINDING:
            raise self._error(f"{NO_FINDING!r} cannot be both a finding and the negative; use negative: rest")

    def _error(self, message: str) -> TaskError:
        return TaskError(f"task{f' {self.name!r}' if self.name else ''}: {message}")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Task:
        """Build a task from a plain dict (e.g. a recipe's ``task`` section).

        ``findings``, ``views`` and ``neutral_findings`` take a list or a single name.

        Raises
        ------
        TaskError
            On a missing or unknown key or a wrong value, naming it in one line.
        """
        if not isinstance(spec, Mapping):
            raise TaskError(f"task: expected a mapping of keys to values, got {type(spec).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in spec if k not in known)
        if unknown:
            raise TaskError(f"task: unknown key {', '.join(map(repr, unknown))}; the keys are {', '.join(known)}")
        for key in ("target", "findings"):
            if spec.get(key) is None:
                raise TaskError(f"task: missing key '{key}'")
        # An empty YAML key (``views:``) reads as None: it means the default.
        values = {key: value for key, value in spec.items() if value is not None}
        for key in ("findings", "views", "neutral_findings"):
            if key in values:
                values[key] = _as_tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The plain dict that :meth:`from_dict` reads back into this task."""
        out = asdict(self)
        for key in ("findings", "views", "neutral_findings"):
            out[key] = list(out[key])
        return out


def _as_tuple(value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return tuple(value)
    return value  # left for __post_init__ to refuse with the key's name


def _optional_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TaskError(f"task: 'name' must be a non-empty text, got {value!r}")
    return value.strip()


def _choice(task: Task, key: str, value: Any, choices: tuple[str, ...]) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in choices:
        raise task._error(f"'{key}' is {value!r}, expected one of {', '.join(choices)}")
    return text


def _names(task: Task, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise task._error(f"'{key}' must be a list of names, got {value!r}")
    names = tuple(v.strip() for v in value)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise task._error(f"'{key}' lists {', '.join(map(repr, repeated))} more than once")
    return names


# --------------------------------------------------------------------------- applying


def catalog_findings(catalog: pd.DataFrame) -> list[str]:
    """Every finding a task may name in this catalog: those listed, their parent levels, and No Finding."""
    found = {NO_FINDING}
    for column in ("findings", "findings_uncertain"):
        if column not in catalog.columns:
            continue
        for text in catalog[column].dropna().unique():
            for name in split_findings(text) or []:
                found.add(name)
                levels = _LEVEL_RE.split(name)
                found.update("/".join(levels[:i]) for i in range(1, len(levels)))
    return sorted(found)


def apply_task(catalog: pd.DataFrame, task: Task) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every image of ``catalog`` its ``task`` label, leaving out (and reporting) the rest.

    Parameters
    ----------
    catalog : DataFrame
        A catalog with a ``findings`` column (and ``findings_uncertain``, ``view``,
        ``visit`` when the task needs them).
    task : Task

    Returns
    -------
    catalog : DataFrame
        The kept rows, ``label`` set to the task label (1/0 for ``binary``, text
        otherwise), plus ``task_<finding>`` columns for ``one_vs_rest``.
    problems : DataFrame
        One row per image left out (``kind``, ``where`` = path, ``detail``).

    Raises
    ------
    TaskError
        When the catalog has no findings, or the task names a finding (or view) that
        the catalog does not have, listing those it has.
    """
    _check_fits(catalog, task)
    catalog = catalog.reset_index(drop=True)
    count = len(catalog)
    # Plain lists: per-row Series access is slow on 100,000-row catalogs.
    uncertain = catalog["findings_uncertain"].tolist() if "findings_uncertain" in catalog.columns else [None] * count
    views = catalog["view"].tolist() if "view" in catalog.columns else [None] * count
    allowed = set(FRONTAL_VIEWS) if task.frontal_only else set(task.views)
    labels: dict[int, Any] = {}
    flags: dict[int, list] = {}
    problems: list[tuple[str, str, str]] = []
    for position, (path, text) in enumerate(zip(catalog["path"].tolist(), catalog["findings"].tolist())):
        if allowed:
            view = views[position]
            if pd.isna(view) or view not in allowed:
                shown = "unknown" if pd.isna(view) else view
                problems.append(("excluded_view", path, f"view {shown}; the task keeps {', '.join(sorted(allowed))}"))
                continue
        positives = split_findings(text)
        if positives is None:
            problems.append(("no_findings", path, "the source gives no findings for this image"))
            continue
        unsure = split_findings(uncertain[position])
        label, flag, excluded = _decide(task, positives, unsure or [])
        if excluded is not None:
            problems.append((excluded[0], path, excluded[1]))
            continue
        labels[position], flags[position] = label, flag
    order = sorted(labels)
    kept = catalog.iloc[order].copy()
    label_dtype = "Int64" if task.target == "binary" else "string"
    kept["label"] = pd.Series([labels[p] for p in order], index=kept.index, dtype=label_dtype)
    if task.target == "one_vs_rest":
        for i, finding in enumerate(task.findings):
            kept[task_column(finding)] = pd.Series([flags[p][i] for p in order], index=kept.index, dtype="Int64")
    if task.one_per_patient:
        kept = _one_per_patient(kept, problems)
    kept = validate_catalog(kept, name=f"catalog after task {task.name or task.target}")
    kept.attrs["task"] = task.to_dict()
    return kept, problems_table(problems)


def task_column(finding: str) -> str:
    """Name of the yes/no column of ``finding`` in a one_vs_rest task (``task_pleural_effusion``)."""
    return "task_" + snake_case(finding)


def _check_fits(catalog: pd.DataFrame, task: Task) -> None:
    if "findings" not in catalog.columns:
        raise TaskError(
            "task: the catalog has no 'findings' column; tasks apply to catalogs of the multi-label "
            "loaders (nih-cxr14, chexpert, mimic-cxr, covid-chestxray, rsna-pneumonia)"
        )
    known = catalog_findings(catalog)
    for key in ("findings", "neutral_findings"):
        unknown = [f for f in getattr(task, key) if f not in known]
        if unknown:
            raise task._error(
                f"{'finding' if key == 'findings' else 'neutral finding'} {', '.join(map(repr, unknown))} "
                f"is not in the catalog; its findings are {', '.join(known)}"
            )
    if task.views or task.frontal_only:
        if "view" not in catalog.columns:
            raise task._error("the catalog has no 'view' column; remove 'views'/'frontal_only' from the task")
        present = set(catalog["view"].dropna().unique())
        unknown = [v for v in task.views if v not in present and v not in VIEWS]
        if unknown:
            raise task._error(
                f"view {', '.join(map(repr, unknown))} is not in the catalog; "
                f"its views are {', '.join(sorted(present))}"
            )


def _has(finding: str, present: frozenset[str]) -> bool:
    if finding == NO_FINDING:
        return not present
    prefix = finding + "/"
    return finding in present or any(p.startswith(prefix) for p in present)


def _decide(task: Task, positives: list[str], uncertain: list[str]) -> tuple[Any, list | None, tuple[str, str] | None]:
    """The label, one_vs_rest flags and exclusion (kind, detail) of one image."""
    ignored = {NO_FINDING, *task.neutral_findings}
    low = frozenset(p for p in positives if p not in ignored)
    high = low | frozenset(u for u in uncertain if u not in ignored)
    if task.uncertain == "positive":
        label, excluded = _outcome(task, high)
    else:
        label, excluded = _outcome(task, low)
        if task.uncertain == "drop" and high != low:
            other = _outcome(task, high)
            if (label, excluded and excluded[0]) != (other[0], other[1] and other[1][0]):
                unsure = SEPARATOR.join(sorted(high - low))
                return None, None, ("uncertain_label", f"the label depends on uncertain {unsure}")
    if excluded is not None or task.target != "one_vs_rest":
        return label, None, excluded
    flags = []
    for finding in task.findings:
        sure, maybe = _has(finding, low), _has(finding, high)
        if sure == maybe or task.uncertain == "negative":
            flags.append(int(sure))
        elif task.uncertain == "positive":
            flags.append(int(maybe))
        else:  # ignore: unknown for this finding (a multi-label loss masks it)
            flags.append(pd.NA)
    return label, flags, None


def _outcome(task: Task, present: frozenset[str]) -> tuple[Any, tuple[str, str] | None]:
    hits = [f for f in task.findings if _has(f, present)]
    shown = SEPARATOR.join(sorted(present)) or NO_FINDING
    if task.target == "multiclass":
        if len(hits) == 1:
            return hits[0], None
        if not hits:
            return None, ("no_target_finding", f"has {shown}: none of {', '.join(task.findings)}")
        return None, ("several_target_findings", f"has {' and '.join(hits)}: one class only")
    if hits:
        return (1 if task.target == "binary" else SEPARATOR.join(sorted(hits))), None
    if task.negative == "rest" or not present:
        return (0 if task.target == "binary" else task.negative), None
    return None, ("other_finding", f"has {shown}: neither {' nor '.join(task.findings)} nor {NO_FINDING}")


def _one_per_patient(kept: pd.DataFrame, problems: list) -> pd.DataFrame:
    no_patient = kept["patient_id"].isna()
    for path in kept.loc[no_patient, "path"]:
        problems.append(("no_patient_id", path, "no patient: one image per patient cannot be ensured"))
    kept = kept[~no_patient]
    visit = kept["visit"] if "visit" in kept.columns else pd.Series(pd.NA, index=kept.index, dtype="string")
    numeric = pd.to_numeric(visit, errors="coerce")
    order_key = numeric if numeric.notna().sum() == visit.notna().sum() else visit.astype("string")
    ordered = kept.assign(_visit=order_key).sort_values(["_visit", "sample_id"], na_position="last", kind="stable")
    first = ordered.drop_duplicates(subset="patient_id", keep="first")
    chosen = first.set_index("patient_id")["path"]
    for path, patient in zip(ordered["path"], ordered["patient_id"]):
        if chosen[patient] != path:
            problems.append(("other_image_of_patient", path, f"patient {patient} keeps {chosen[patient]}"))
    return kept.loc[sorted(first.index, key=kept.index.get_loc)]

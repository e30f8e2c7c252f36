"""Reviewers' decisions: tags in the FiftyOne App, a CSV file, and their effect on a selection.

Reviewers tag samples (or their ``ground_truth`` label) in the App:

- ``exclude``: drop the sample (a recipe's ``review`` key excludes it, reason ``review: exclude``);
- ``relabel:KL2`` or ``relabel:2``: its label should be 2 (a ``KL`` prefix is dropped).

:func:`pull_review` reads them into a table (``sample_id, action, new_label, tag``),
written as CSV by :func:`write_review`; :func:`read_review` and :func:`apply_review` are
what a recipe uses, without FiftyOne.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pandas as pd

from curate.errors import CurateError
from curate.select.exclusion import REVIEW_EXCLUDE

__all__ = [
    "REVIEW_COLUMNS",
    "EXCLUDE_REASON",
    "parse_tag",
    "pull_review",
    "write_review",
    "read_review",
    "review_sha256",
    "apply_review",
]

REVIEW_COLUMNS = ("sample_id", "action", "new_label", "tag")
EXCLUDE_REASON = REVIEW_EXCLUDE
_RELABEL = re.compile(r"^relabel\s*:\s*(?:kl\s*)?(?P<label>\S.*?)\s*$", re.IGNORECASE)


def parse_tag(tag: str) -> tuple[str, str | None] | None:
    """``("exclude", None)``, ``("relabel", "2")`` or None for a tag that is not a decision.

    >>> parse_tag("relabel:KL2"), parse_tag("relabel:2"), parse_tag("exclude"), parse_tag("blurred")
    (('relabel', '2'), ('relabel', '2'), ('exclude', None), None)
    """
    text = str(tag).strip()
    if text.lower() == "exclude":
        return "exclude", None
    match = _RELABEL.match(text)
    if match:
        return "relabel", match["label"]
    return None


def pull_review(dataset) -> pd.DataFrame:
    """The decisions tagged on ``dataset`` (sample tags and ``ground_truth`` label tags).

    Returns
    -------
    DataFrame
        ``sample_id, action, new_label, tag``, one row per decision, sorted by sample id.
    """
    schema = dataset.get_field_schema()
    if "sample_id" not in schema:
        raise CurateError(f"dataset {dataset.name!r} was not built by `curate browse` (no sample_id field)")
    fields = ["sample_id", "tags"]
    has_labels = "ground_truth" in schema
    if has_labels:
        fields.append("ground_truth.tags")
    values = dataset.values(fields)
    label_tags = values[2] if has_labels else [None] * len(values[0])
    out = []
    for sample_id, tags, more in zip(values[0], values[1], label_tags):
        seen = set()
        for tag in list(tags or []) + list(more or []):
            decision = parse_tag(tag)
            if decision is None or tag in seen:
                continue
            seen.add(tag)
            out.append({"sample_id": sample_id, "action": decision[0], "new_label": decision[1], "tag": tag})
    table = pd.DataFrame(out, columns=list(REVIEW_COLUMNS))
    return table.sort_values(["sample_id", "action", "tag"], kind="stable").reset_index(drop=True)


def write_review(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a review table as CSV (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    table.loc[:, list(REVIEW_COLUMNS)].to_csv(partial, index=False)
    os.replace(partial, path)
    return path


def review_sha256(path: str | os.PathLike) -> str:
    """sha256 of the review file's bytes (recorded in the recipe, hence in the manifest's card)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_review(path: str | os.PathLike) -> pd.DataFrame:
    """Read a review CSV; ``action`` is filled from ``tag`` when only the tag is given.

    Raises
    ------
    CurateError
        Missing file or columns, an unknown action, a relabel without a label, or two
        different new labels for one sample.
    """
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"review file {path} not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "sample_id" not in table.columns or not ({"action", "tag"} & set(table.columns)):
        raise CurateError(f"{path}: a review file needs columns sample_id and action (or tag)")
    for column in REVIEW_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    problems = []
    for i, row in table.iterrows():
        action, label = row["action"].strip().lower(), row["new_label"].strip()
        if not action:
            decision = parse_tag(row["tag"])
            if decision is None:
                problems.append(f"line {i + 2}: tag {row['tag']!r} is not exclude or relabel:<label>")
                continue
            action, label = decision[0], label or (decision[1] or "")
        if action not in ("exclude", "relabel"):
            problems.append(f"line {i + 2}: action {action!r} is not exclude or relabel")
        elif action == "relabel" and not label:
            problems.append(f"line {i + 2}: relabel without a new_label")
        table.at[i, "action"], table.at[i, "new_label"] = action, label
    if problems:
        raise CurateError(f"{path}: {'; '.join(problems[:3])}" + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""))
    relabels = table[table["action"] == "relabel"].drop_duplicates(["sample_id", "new_label"])
    clash = relabels["sample_id"][relabels["sample_id"].duplicated()]
    if len(clash):
        raise CurateError(f"{path}: sample {clash.iloc[0]} has two different relabel decisions")
    table["new_label"] = pd.Series([v or None for v in table["new_label"]], index=table.index, dtype=object)
    return table.loc[:, list(REVIEW_COLUMNS)].reset_index(drop=True)


def _like(value: str, labels: pd.Series):
    """``value`` in the dtype of the existing labels (so '2' becomes 2 for integer grades)."""
    if pd.api.types.is_integer_dtype(labels.dtype):
        try:
            return int(value)
        except ValueError:
            raise CurateError(f"review: new label {value!r} is not an integer like the catalog's labels") from None
    if pd.api.types.is_float_dtype(labels.dtype):
        return float(value)
    return value


def apply_review(catalog: pd.DataFrame, review: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Relabel the catalog's samples as reviewed, and list the ones to exclude.

    Parameters
    ----------
    catalog : DataFrame
        With ``sample_id`` and ``label``; not modified.
    review : DataFrame
        As :func:`read_review` returns it.

    Returns
    -------
    (DataFrame, list of str)
        The relabelled copy of the catalog (``attrs`` kept) and the sample ids to exclude
        (with reason :data:`EXCLUDE_REASON`).
    """
    out = catalog.copy()
    out.attrs.update(catalog.attrs)
    ids = out["sample_id"].astype(str)
    unknown = sorted(set(review["sample_id"].astype(str)) - set(ids))
    if unknown:
        raise CurateError(f"review: {len(unknown)} sample id(s) not in the catalog, e.g. {', '.join(unknown[:3])}")
    relabel = review[review["action"] == "relabel"]
    if len(relabel):
        new = dict(zip(relabel["sample_id"].astype(str), relabel["new_label"]))
        mask = ids.isin(new).to_numpy()
        values = [_like(new[i], out["label"]) for i in ids[mask]]
        out.loc[mask, "label"] = pd.Series(values, index=out.index[mask], dtype=out["label"].dtype)
    exclude = sorted(set(review.loc[review["action"] == "exclude", "sample_id"].astype(str)))
    return out, exclude

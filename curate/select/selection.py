"""``select``: split, exclude, sample; one table saying what every sample became.

The selection table has one row per catalog sample, in catalog order:

``sample_id``, ``patient_id``, ``label``
    From the catalog, for convenience.
``split``
    ``train``, ``val`` or ``test`` (``<NA>`` for a sample the official split leaves out).
``selected``
    True for the rows a trainer gets.
``repeat``
    How many times the trainer takes the row (0 when not selected; above 1 when a
    short class was oversampled).
``weight``
    Loss weight of the row (class weights of the ``full`` sampler; 1 otherwise; 0
    when not selected).
``exclusion_reason``
    Why the sample was excluded, every reason joined by ``"; "`` (``<NA>`` when it was not).

Samplers work on the ``train`` split only unless ``sample_splits`` says
otherwise; the other splits keep every sample that survived exclusion, so
every sampler of one split table shares one validation and one test set.

Besides the rules of :mod:`curate.select.exclusion`, three reasons come from the
data's structure and cannot be switched off: ``no_split`` (no official split),
``patient_in_other_split`` (an official split putting a patient in two splits:
the samples outside the patient's test, else val, split are excluded, so the
test set stays as published and nothing leaks into it) and ``unlabelled``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from curate.catalog import SPLITS, validate_catalog
from curate.errors import CurateError
from curate.select._align import align_features, align_labels, align_quality
from curate.select._labels import class_order, label_text
from curate.select.exclusion import DEFAULT_MIN_GRADE_DISTANCE, exclusion_reasons
from curate.select.frozen import apply_frozen_split, catalog_fingerprint
from curate.select.invariants import check_split
from curate.select.samplers import BaseSampler, FullSampler, make_sampler
from curate.select.splits import as_split_table, make_split, official_split, patient_groups
from curate.select.weights import DEFAULT_BETA, class_weights

__all__ = ["RESULT_COLUMNS", "select", "resolve_split"]

RESULT_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "patient_id",
    "label",
    "split",
    "selected",
    "weight",
    "repeat",
    "exclusion_reason",
)

# Where a patient's samples stay when an official split puts the patient in several splits.
_PRIORITY = {"test": 0, "val": 1, "train": 2}


def resolve_split(catalog: pd.DataFrame, split: str | pd.DataFrame) -> pd.DataFrame:
    """The split table of ``catalog`` from ``"official"``, ``"new"``, a split table or a frozen split.

    A table read by :func:`~curate.select.frozen.read_frozen_split` is applied to
    the catalog (:func:`~curate.select.frozen.apply_frozen_split`); any other
    table must give a split for every catalog sample.
    """
    if isinstance(split, str):
        if split == "official":
            return official_split(catalog)
        if split == "new":
            return make_split(catalog)
        raise CurateError(f"unknown split {split!r}: 'official', 'new', or a split table")
    if "format" in split.attrs.get("split", {}):
        return apply_frozen_split(catalog, split)
    table = split.set_index(split["sample_id"].astype(str))
    ids = catalog["sample_id"].astype(str)
    missing = ~ids.isin(table.index)
    if missing.any():
        raise CurateError(
            f"the split table has no row for {int(missing.sum())} catalog sample(s), e.g. {ids[missing].iloc[0]}"
        )
    given = table.loc[ids.to_numpy(), "split"].astype("string").reset_index(drop=True)
    unknown = given.notna() & ~given.isin(SPLITS)
    if unknown.any():
        raise CurateError(f"the split table holds split {given[unknown].iloc[0]!r}; splits are {', '.join(SPLITS)}")
    return as_split_table(catalog, given, dict(split.attrs.get("split", {"method": "given"})))


def _structural_reasons(catalog: pd.DataFrame, splits: pd.DataFrame, method: str) -> pd.Series:
    reasons = pd.Series(pd.NA, index=catalog.index, dtype="string")
    no_split = splits["split"].isna().to_numpy()
    reasons[no_split] = "no_split"
    if method == "official":
        known = splits[~no_split]
        groups = patient_groups(known)
        rank = known["split"].map(_PRIORITY).fillna(len(_PRIORITY))
        best = rank.groupby(groups).transform("min")
        leaking = rank > best
        if leaking.any():
            home = known["split"].groupby(groups).transform(lambda s: min(s, key=lambda v: _PRIORITY.get(v, 9)))
            text = "patient_in_other_split (patient " + known["patient_id"].astype(str) + " is also in " + home + ")"
            reasons[leaking[leaking].index] = text[leaking]
    unlabelled = catalog["label"].isna().to_numpy()
    reasons[unlabelled] = _join(reasons[unlabelled], "unlabelled")
    return reasons


def _join(first: pd.Series, second: pd.Series | str) -> pd.Series:
    second = second if isinstance(second, pd.Series) else pd.Series(second, index=first.index, dtype="string")
    both = first.notna() & second.notna()
    out = first.fillna(second)
    out[both] = first[both] + "; " + second[both]
    return out


def _candidates(
    catalog: pd.DataFrame, rows: pd.Index, quality: pd.DataFrame | None, labels: pd.DataFrame | None
) -> pd.DataFrame:
    """The columns samplers and strategies read, sorted by sample id."""
    from curate.quality.scan import INFORMATIONAL_FLAGS

    frame = pd.DataFrame(
        {
            "sample_id": catalog.loc[rows, "sample_id"].astype(str),
            "patient_id": catalog.loc[rows, "patient_id"].astype("string"),
            "class": label_text(catalog.loc[rows, "label"]).astype(str),
            "quality_problems": 0,
            "label_quality": np.nan,
        },
        index=rows,
    )
    if quality is not None:
        problems = [c for c in quality.columns if c.startswith("flag_") and c[5:] not in INFORMATIONAL_FLAGS]
        frame["quality_problems"] = quality.loc[rows, problems].fillna(False).astype(bool).sum(axis=1).astype(int)
    if labels is not None and "label_quality" in labels.columns:
        frame["label_quality"] = pd.to_numeric(labels.loc[rows, "label_quality"], errors="coerce").astype(float)
    return frame.sort_values("sample_id", kind="stable")


def _standardised(matrix: np.ndarray) -> np.ndarray:
    # z-scores per column over the split's candidates: no feature dominates by its unit
    scale = matrix.std(axis=0)
    return (matrix - matrix.mean(axis=0)) / np.where(scale > 0, scale, 1.0)


def select(
    catalog: pd.DataFrame,
    *,
    split: str | pd.DataFrame = "official",
    sampler: str | BaseSampler = "full",
    quality: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    features: pd.DataFrame | None = None,
    exclude: Iterable[str] | None = None,
    min_grade_distance: int | None = DEFAULT_MIN_GRADE_DISTANCE,
    sample_splits: Iterable[str] = ("train",),
    seed: int = 0,
    reviewed_out: Iterable[str] = (),
) -> pd.DataFrame:
    """Split a catalog, exclude what should not be trained on, and sample the training split.

    Parameters
    ----------
    catalog : DataFrame
        A catalog (validated here).
    split : {"official", "new"} or DataFrame
        The source's split, a new one with the default fractions and seed 0, or a
        split table (from :func:`~curate.select.splits.make_split`, or a frozen
        split from :func:`~curate.select.frozen.read_frozen_split`).
    sampler : str or BaseSampler
        A sampler, or the name of one that needs no parameter (``"full"``).
    quality, labels : DataFrame, optional
        The quality and labels tables, for exclusion and the ``quality`` strategy.
    features : DataFrame, optional
        Numeric columns indexed by (or with) ``sample_id``, for the ``diverse``
        strategy and the samplers that need them.
    exclude : iterable of str, optional
        Exclusion rules (default :data:`~curate.select.exclusion.DEFAULT_EXCLUDE`).
    min_grade_distance : int or None
        Of the ``label_issue`` rule.
    sample_splits : iterable of str
        The splits the sampler works on (default train only).
    seed : int
        Seed of the sampling (not of the split: a split's seed is its own).
    reviewed_out : iterable of str
        Sample ids a reviewer excluded; they keep the reason ``review: exclude``.

    Returns
    -------
    DataFrame
        :data:`RESULT_COLUMNS`, one row per catalog sample, in catalog order;
        ``attrs["selection"]`` records the parameters, the split, the split check,
        the exclusion rules and the class weights.

    Raises
    ------
    CurateError
        For bad parameters or tables; :class:`~curate.select.errors.SplitError` for a
        split breaking its invariants; :class:`~curate.select.errors.ShortClassError`
        when a class is short and the sampler was told to fail.
    """
    catalog = validate_catalog(catalog)
    sampler = make_sampler(sampler) if isinstance(sampler, str) else sampler
    if not isinstance(sampler, BaseSampler):
        raise CurateError(f"sampler must be a name or a sampler object, not {sampler!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CurateError(f"the seed must be a whole number >= 0, not {seed!r}")
    sample_splits = tuple(sample_splits)
    unknown = [s for s in sample_splits if s not in SPLITS]
    if unknown:
        raise CurateError(f"unknown split(s) to sample {', '.join(unknown)}; splits are {', '.join(SPLITS)}")
    if getattr(sampler, "strategy", None) == "quality" and quality is None and labels is None:
        raise CurateError("strategy 'quality' needs a quality table or a labels table (--quality / --labels)")

    splits = resolve_split(catalog, split)
    split_info = dict(splits.attrs.get("split", {}))
    method = split_info.get("method", "given")
    structural = _structural_reasons(catalog, splits, method)
    rules = exclusion_reasons(
        catalog,
        quality=quality,
        labels=labels,
        exclude=exclude,
        min_grade_distance=min_grade_distance,
        reviewed_out=reviewed_out,
    )
    reasons = _join(structural, rules)

    checked = splits[structural.isna() | (structural == "unlabelled")]
    check = check_split(
        checked,
        fractions=split_info.get("fractions") if method == "new" else None,
        require_every_class=method == "new",
    )
    check.raise_for_violations()

    aligned_quality = align_quality(catalog, quality) if quality is not None else None
    aligned_labels = align_labels(catalog, labels) if labels is not None else None
    classes = class_order(label_text(catalog["label"]).dropna())
    split_of = splits["split"].fillna("").astype(str).to_numpy()
    kept = reasons.isna().to_numpy()

    repeat = pd.Series(0, index=catalog.index, dtype=np.int64)
    weight = pd.Series(0.0, index=catalog.index, dtype=float)
    notes = list(check.notes)
    for name in sample_splits:
        if not (split_of == name).any():
            notes.append(f"split {name} is empty: nothing to sample")
    for name in [s for s in SPLITS if (split_of == s).any()]:
        rows = catalog.index[(split_of == name) & kept]
        if name not in sample_splits:
            repeat[rows], weight[rows] = 1, 1.0
            continue
        candidates = _candidates(catalog, rows, aligned_quality, aligned_labels)
        matrix = None
        if sampler.needs_features:
            matrix = _standardised(align_features(features, candidates["sample_id"], needed_by=sampler.describe()))
        chosen = sampler.sample(candidates, classes=classes, features=matrix, seed=int(seed), split=name)
        repeat[chosen.index], weight[chosen.index] = chosen["repeat"], chosen["weight"]

    result = pd.DataFrame(
        {
            "sample_id": catalog["sample_id"].astype("string"),
            "patient_id": catalog["patient_id"].astype("string"),
            "label": catalog["label"],
            "split": splits["split"].astype("string").to_numpy(),
            "selected": (repeat > 0).to_numpy(),
            "weight": weight.to_numpy(),
            "repeat": repeat.to_numpy(),
            "exclusion_reason": reasons.astype("string").to_numpy(),
        }
    )
    beta = sampler.beta if isinstance(sampler, FullSampler) else DEFAULT_BETA
    result.attrs["selection"] = {
        "sampler": sampler.get_params(),
        "seed": int(seed),
        "sample_splits": list(sample_splits),
        "split": split_info,
        "split_check": check.to_dict(),
        "exclusion": dict(rules.attrs),
        "labels_covered": None if aligned_labels is None else aligned_labels.attrs["covered"],
        "classes": classes,
        "class_weights": _recorded_weights(result, sample_splits, beta),
        "catalog_fingerprint": catalog_fingerprint(catalog),
        "notes": notes,
    }
    return result


def _recorded_weights(result: pd.DataFrame, sample_splits: tuple[str, ...], beta: float) -> dict:
    """Both weighting schemes over each sampled split's selected rows (repeats counted)."""
    out = {}
    for name in sample_splits:
        rows = result[(result["split"] == name) & result["selected"]]
        counts = rows.groupby(label_text(rows["label"]))["repeat"].sum()
        counts = {str(k): int(v) for k, v in counts.items()}
        out[name] = {
            "rows": counts,
            "inverse": class_weights(counts, weighting="inverse"),
            "effective": class_weights(counts, weighting="effective", beta=beta),
            "beta": beta,
        }
    return out

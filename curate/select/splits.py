"""Patient-grouped splits: the source's official one, or a new stratified one.

A split table has one row per catalog sample: ``sample_id``, ``patient_id``,
``label`` and ``split`` (``train``, ``val`` or ``test``); ``attrs["split"]`` says
how it was made. Every sample of a patient is in the same split, so a model is
never evaluated on a knee whose other knee it was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from curate.catalog import SPLITS
from curate.errors import CurateError
from curate.select._labels import label_text

__all__ = [
    "DEFAULT_FRACTIONS",
    "SPLIT_COLUMNS",
    "parse_fractions",
    "official_split",
    "make_split",
    "patient_groups",
    "as_split_table",
]

#: The fractions of a new split when none are given.
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}

SPLIT_COLUMNS: tuple[str, ...] = ("sample_id", "patient_id", "label", "split")

_NAMES_BY_LENGTH = {2: ("train", "test"), 3: SPLITS}


def parse_fractions(fractions: Mapping[str, float] | Sequence[float] | str | None) -> dict[str, float]:
    """Check split fractions and name them.

    Parameters
    ----------
    fractions : mapping, sequence, str or None
        ``{"train": 0.7, "val": 0.1, "test": 0.2}``; or 3 numbers (train, val,
        test) or 2 numbers (train, test), as a sequence or as text ``"0.7,0.1,0.2"``;
        None gives :data:`DEFAULT_FRACTIONS`.

    Returns
    -------
    dict
        Split name -> fraction, in train, val, test order.

    Raises
    ------
    CurateError
        Unless every fraction is > 0, they sum to 1 and ``train`` is among the splits.

    Examples
    --------
    >>> parse_fractions("0.8,0.2")
    {'train': 0.8, 'test': 0.2}
    """
    if fractions is None:
        return dict(DEFAULT_FRACTIONS)
    if isinstance(fractions, str):
        parts = [p.strip() for p in fractions.split(",") if p.strip()]
        try:
            fractions = [float(p) for p in parts]
        except ValueError:
            raise CurateError(f"fractions {fractions!r} are not numbers like 0.7,0.1,0.2") from None
    if isinstance(fractions, Mapping):
        unknown = sorted(set(fractions) - set(SPLITS))
        if unknown:
            raise CurateError(f"unknown split name(s) {', '.join(map(str, unknown))}; splits are {', '.join(SPLITS)}")
        named = {name: fractions[name] for name in SPLITS if name in fractions}
    else:
        values = list(fractions)
        if len(values) not in _NAMES_BY_LENGTH:
            raise CurateError(f"give 3 fractions (train, val, test) or 2 (train, test), not {len(values)}")
        named = dict(zip(_NAMES_BY_LENGTH[len(values)], values))
    try:
        named = {name: float(value) for name, value in named.items()}
    except (TypeError, ValueError):
        raise CurateError(f"fractions must be numbers, not {named!r}") from None
    if "train" not in named:
        raise CurateError("the fractions need a train split")
    if any(not math.isfinite(v) or v <= 0 for v in named.values()):
        raise CurateError(f"every fraction must be > 0: {_show(named)}")
    if abs(sum(named.values()) - 1) > 1e-6:
        raise CurateError(f"fractions must sum to 1, these sum to {sum(named.values()):g}: {_show(named)}")
    return named


def _show(fractions: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in fractions.items())


def patient_groups(catalog: pd.DataFrame) -> pd.Series:
    """The group of every sample: its patient, or the sample alone when the patient is unknown."""
    patient = catalog["patient_id"].astype("string")
    known = (patient.str.strip() != "").fillna(False).astype(bool)
    return ("patient:" + patient).where(known, "sample:" + catalog["sample_id"].astype("string"))


def as_split_table(catalog: pd.DataFrame, split: pd.Series, info: dict) -> pd.DataFrame:
    """A split table from a catalog and the split of each of its rows; ``info`` goes to ``attrs["split"]``."""
    table = pd.DataFrame(
        {
            "sample_id": catalog["sample_id"].astype("string").to_numpy(),
            "patient_id": catalog["patient_id"].astype("string").to_numpy(),
            "label": catalog["label"].to_numpy(),
            "split": pd.array(split.to_numpy(), dtype="string"),
        }
    )
    table["label"] = table["label"].astype(catalog["label"].dtype)
    table.attrs["split"] = info
    return table


def official_split(catalog: pd.DataFrame) -> pd.DataFrame:
    """The split the source ships with (catalog column ``official_split``).

    Samples without an official split get ``<NA>``; the selection excludes them.

    Raises
    ------
    CurateError
        When the catalog has no ``official_split`` column, or it is empty.
    """
    if "official_split" not in catalog.columns or catalog["official_split"].isna().all():
        raise CurateError(
            "the catalog has no official split (column 'official_split' is missing or empty): "
            "make a new one (split 'new', e.g. --split new --fractions 0.7,0.1,0.2)"
        )
    return as_split_table(catalog, catalog["official_split"].astype("string"), {"method": "official"})


def make_split(
    catalog: pd.DataFrame,
    *,
    fractions: Mapping[str, float] | Sequence[float] | str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Make a new split, grouped by patient and stratified by label.

    The assignment is the greedy one of scikit-learn's ``StratifiedGroupKFold``
    generalised to splits of unequal size (``StratifiedGroupKFold`` only makes
    equal folds and may leave a rare class out of a small split):

    1. every class held by at least as many patients as there are splits first
       gets one patient in each split, smallest splits first, using the patients
       with the fewest samples;
    2. the other patients, those holding rare classes first, then large patients
       first, ties in seeded random order, each go to the split that still lacks the
       largest share of its target for the patient's classes (target: fraction x
       class total), so every class fills every split in proportion.

    The result does not depend on the catalog's row order.

    Parameters
    ----------
    catalog : DataFrame
        A validated catalog. Samples without a patient id form a group alone.
    fractions : mapping, sequence or str, optional
        See :func:`parse_fractions`; default 0.7 / 0.1 / 0.2.
    seed : int
        Seed of the tie-breaking order; another seed gives another split.

    Returns
    -------
    DataFrame
        The split table (:data:`SPLIT_COLUMNS`), in catalog order;
        ``attrs["split"]`` records the method, seed and fractions.

    Examples
    --------
    >>> catalog = pd.DataFrame({"sample_id": list("abcdef"), "patient_id": list("ppqrst"),
    ...                         "label": [0, 0, 1, 0, 1, 1]})
    >>> table = make_split(catalog, fractions="0.5,0.5", seed=0)
    >>> table.groupby("split")["patient_id"].nunique().to_dict()
    {'test': 2, 'train': 3}
    """
    named = parse_fractions(fractions)
    groups = patient_groups(catalog)
    labels = label_text(catalog["label"]).fillna("<NA>")
    counts = pd.crosstab(groups, labels).sort_index()  # sorted: independent of row order
    rng = np.random.default_rng(_check_seed(seed))
    assignment = _assign_groups(counts.to_numpy(dtype=np.int64), np.array(list(named.values())), rng)
    names = np.array(list(named))
    split_of_group = pd.Series(names[assignment], index=counts.index)
    info = {"method": "new", "seed": int(seed), "fractions": named}
    return as_split_table(catalog, groups.map(split_of_group), info)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CurateError(f"the seed must be a whole number >= 0, not {seed!r}")
    return int(seed)


def _assign_groups(counts: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split index of every group; ``counts`` is groups x classes."""
    n_groups, _ = counts.shape
    n_splits = len(fractions)
    totals = counts.sum(axis=0)
    sizes = counts.sum(axis=1)
    targets = fractions[:, None] * totals[None, :]
    filled = np.zeros_like(targets)
    assigned = np.full(n_groups, -1)
    priority = rng.permutation(n_groups)  # the seeded tie-break

    def put(group: int, split: int) -> None:
        assigned[group] = split
        filled[split] += counts[group]

    holders = (counts > 0).sum(axis=0)
    smallest_splits_first = np.argsort(fractions, kind="stable")
    for c in np.argsort(holders, kind="stable"):
        if holders[c] < n_splits:
            continue  # too rare to be everywhere; check_split says so
        for split in smallest_splits_first:
            if filled[split, c] > 0:
                continue
            free = np.flatnonzero((assigned < 0) & (counts[:, c] > 0))
            if free.size == 0:
                break
            put(free[np.lexsort((priority[free], sizes[free]))[0]], split)

    # Each group goes where its classes lack the largest share of their target (a largest-remainder
    # rule): a split's counts then stay proportional to the fractions for every class at every step,
    # and a class that every split still lacks equally (a common one) leaves the choice to the rare.
    safe_targets = np.where(targets > 0, targets, 1.0)
    rarity = np.where(counts > 0, totals[None, :], np.iinfo(np.int64).max).min(axis=1)
    split_targets = fractions * totals.sum()
    for group in np.lexsort((priority, -sizes, rarity)):
        if assigned[group] >= 0:
            continue
        lacking = ((targets - filled) / safe_targets) @ counts[group]
        room = (split_targets - filled.sum(axis=1)) / split_targets
        put(group, np.lexsort((np.arange(n_splits), -room, -lacking))[0])
    return assigned

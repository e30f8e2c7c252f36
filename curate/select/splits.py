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

#: Allowed difference between a split's share of the samples and its fraction, on top of what
#: whole patients force (see :func:`~curate.select.invariants.proportion_tolerance`).
DEFAULT_TOLERANCE = 0.02

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

    Step 1 takes patients class by class and can use up the few a later class
    needs. When it leaves out of a split a class that could be there (along with
    the classes it did place everywhere), an exact search over the patients
    holding those classes replaces it, then step 2 runs again. So every class that
    can be in every split is, and each split's share of the samples is within the
    tolerance of :func:`~curate.select.invariants.check_split` (whole patients
    never make that impossible). A class that cannot be everywhere (too few
    patients, or patients other classes need) is left out of some split, and
    ``check_split`` says why in a note.

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
    required = (counts.columns != "<NA>").to_numpy()  # check_split asks nothing of unlabelled samples
    assignment = _assign_groups(counts.to_numpy(dtype=np.int64), np.array(list(named.values())), rng, required)
    names = np.array(list(named))
    split_of_group = pd.Series(names[assignment], index=counts.index)
    info = {"method": "new", "seed": int(seed), "fractions": named}
    return as_split_table(catalog, groups.map(split_of_group), info)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CurateError(f"the seed must be a whole number >= 0, not {seed!r}")
    return int(seed)


def _share_tolerance(
    n_splits: int, n_classes: int, largest: int, n_samples: int, tolerance: float = DEFAULT_TOLERANCE
) -> float:
    """``tolerance + (splits - 1) x classes x largest patient / samples``: see
    :func:`~curate.select.invariants.proportion_tolerance`, which reads these numbers off a split table."""
    return tolerance + max(n_splits - 1, 1) * n_classes * largest / n_samples


def _assign_groups(
    counts: np.ndarray, fractions: np.ndarray, rng: np.random.Generator, required: np.ndarray
) -> np.ndarray:
    """Split index of every group; ``counts`` is groups x classes.

    ``required`` marks the classes that should be in every split (make_split
    leaves missing labels out). The greedy of :func:`make_split` is kept when it
    is already the best possible; otherwise its first step is replaced by an
    exact search and the second step redone.
    """
    n_groups, n_classes = counts.shape
    n_splits = len(fractions)
    if n_groups == 0:
        return np.full(0, -1)
    priority = rng.permutation(n_groups)  # the seeded tie-break
    sizes = counts.sum(axis=1)
    assigned = np.full(n_groups, -1)
    _place_first_holders(counts, fractions, priority, assigned)
    _place_the_rest(counts, fractions, priority, assigned)

    holds = counts[:, required] > 0
    holds = holds[:, holds.sum(axis=0) >= n_splits]  # the others cannot be everywhere
    allowed = _share_tolerance(n_splits, n_classes, int(sizes.max()), int(sizes.sum()))
    everywhere = _in_every_split(holds, assigned, n_splits)
    if everywhere.all() and _within(assigned, sizes, fractions, allowed):
        return assigned

    # The greedy first step takes holders class by class and can use up the few patients a later
    # class needs. Keep the classes it put everywhere and add every other one that can join them.
    rank = np.empty(n_groups, dtype=np.int64)
    rank[np.lexsort((priority, sizes))] = np.arange(n_groups)  # small patients first, as in step 1
    wanted = everywhere
    witnesses = _witnesses_in(holds[:, everywhere], assigned, n_splits, rank)
    for c in np.flatnonzero(~everywhere):
        trial = wanted.copy()
        trial[c] = True
        try:
            found = _cover_every_split(holds[:, trial], n_splits, rank)
        except _SearchLimit:
            found = None  # treated as impossible; check_split's note says the search gave up
        if found is not None:
            wanted, witnesses = trial, found
    if (wanted == everywhere).all() and _within(assigned, sizes, fractions, allowed):
        return assigned  # the greedy already has every class that can be everywhere

    assigned = witnesses.copy()
    _place_the_rest(counts, fractions, priority, assigned)
    if not _within(assigned, sizes, fractions, allowed):
        # Stratifying can overshoot a small split; filling by size alone cannot (see _place_by_size).
        assigned = witnesses.copy()
        _place_by_size(sizes, fractions, priority, assigned)
    return assigned


def _filled(counts: np.ndarray, assigned: np.ndarray, n_splits: int) -> np.ndarray:
    filled = np.zeros((n_splits, counts.shape[1]))
    placed = assigned >= 0
    np.add.at(filled, assigned[placed], counts[placed])
    return filled


def _place_first_holders(
    counts: np.ndarray, fractions: np.ndarray, priority: np.ndarray, assigned: np.ndarray
) -> None:
    """Greedy step 1: one holder of every class in every split, rarest classes first, smallest splits first."""
    n_splits = len(fractions)
    sizes = counts.sum(axis=1)
    filled = _filled(counts, assigned, n_splits)
    holders = (counts > 0).sum(axis=0)
    for c in np.argsort(holders, kind="stable"):
        if holders[c] < n_splits:
            continue  # too rare to be everywhere; check_split says so
        for split in np.argsort(fractions, kind="stable"):
            if filled[split, c] > 0:
                continue
            free = np.flatnonzero((assigned < 0) & (counts[:, c] > 0))
            if free.size == 0:
                break
            group = free[np.lexsort((priority[free], sizes[free]))[0]]
            assigned[group] = split
            filled[split] += counts[group]


def _place_the_rest(counts: np.ndarray, fractions: np.ndarray, priority: np.ndarray, assigned: np.ndarray) -> None:
    """Greedy step 2: every unplaced group where its classes lack the largest share of their target."""
    # A largest-remainder rule: a split's counts then stay proportional to the fractions for every
    # class at every step, and a class that every split still lacks equally (a common one) leaves
    # the choice to the rare.
    n_splits = len(fractions)
    totals = counts.sum(axis=0)
    sizes = counts.sum(axis=1)
    targets = fractions[:, None] * totals[None, :]
    filled = _filled(counts, assigned, n_splits)
    safe_targets = np.where(targets > 0, targets, 1.0)
    rarity = np.where(counts > 0, totals[None, :], np.iinfo(np.int64).max).min(axis=1)
    split_targets = fractions * totals.sum()
    for group in np.lexsort((priority, -sizes, rarity)):
        if assigned[group] >= 0:
            continue
        lacking = ((targets - filled) / safe_targets) @ counts[group]
        room = (split_targets - filled.sum(axis=1)) / split_targets
        split = np.lexsort((np.arange(n_splits), -room, -lacking))[0]
        assigned[group] = split
        filled[split] += counts[group]


def _place_by_size(sizes: np.ndarray, fractions: np.ndarray, priority: np.ndarray, assigned: np.ndarray) -> None:
    """Every unplaced group, largest first, into the split furthest below its target size.

    A group only goes to a split below its target, so no split ends more than one
    group (or its placed holders, at most one per class) above it, and none further
    below it than the others are above: every split is within (splits - 1) x
    classes x largest group of its target, inside the tolerance of check_split.
    Whole patients therefore never make the proportions impossible.
    """
    n_splits = len(fractions)
    target = fractions * sizes.sum()
    filled = np.bincount(assigned[assigned >= 0], weights=sizes[assigned >= 0], minlength=n_splits)
    for group in np.lexsort((priority, -sizes)):
        if assigned[group] < 0:
            split = int(np.argmax(target - filled))  # first of the tied
            assigned[group] = split
            filled[split] += sizes[group]


def _in_every_split(holds: np.ndarray, assigned: np.ndarray, n_splits: int) -> np.ndarray:
    """Per class (column of ``holds``): is it in every split?"""
    present = np.zeros((n_splits, holds.shape[1]), dtype=bool)
    placed = assigned >= 0
    np.logical_or.at(present, assigned[placed], holds[placed])
    return present.all(axis=0)


def _within(assigned: np.ndarray, sizes: np.ndarray, fractions: np.ndarray, allowed: float) -> bool:
    """Is every split's share of the samples within ``allowed`` of its fraction (as check_split computes it)?"""
    shares = np.bincount(assigned, weights=sizes, minlength=len(fractions)) / max(int(sizes.sum()), 1)
    return bool((np.abs(shares - fractions) <= allowed).all())


def _witnesses_in(holds: np.ndarray, assigned: np.ndarray, n_splits: int, rank: np.ndarray) -> np.ndarray:
    """Of an assignment putting every class of ``holds`` everywhere, one holder per class and split (best ranked).

    Returns the split of each such group, -1 for the others: at most one group
    per class in each split, which is what :func:`_place_by_size` needs.
    """
    witnesses = np.full(len(assigned), -1)
    by_rank = np.argsort(rank)
    for split in range(n_splits):
        covered = np.zeros(holds.shape[1], dtype=bool)
        for c in range(holds.shape[1]):
            if not covered[c]:
                holders = by_rank[(assigned[by_rank] == split) & holds[by_rank, c]]
                witnesses[holders[0]] = split
                covered |= holds[holders[0]]
    return witnesses


#: Steps of :func:`_cover_every_split` before it gives up. Real catalogs need a few dozen:
#: patients holding the same classes are one kind, and the scarcest class is tried first.
_SEARCH_STEPS = 100_000


class _SearchLimit(Exception):
    """:func:`_cover_every_split` gave up after ``steps`` steps."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"no answer after {steps:,} steps")
        self.steps = steps


def _cover_every_split(holds: np.ndarray, n_splits: int, rank: np.ndarray | None = None) -> np.ndarray | None:
    """Groups that put every class in every split, or None when no assignment can.

    An exact search. Only the classes a group holds matter, so groups holding the
    same classes are one kind, of which at most ``n_splits`` copies are useful.
    Depth first: the class a split lacks that has the fewest kinds left to give is
    given first, each kind tried (most lacking classes covered, then best ranked),
    and a class with fewer copies left than splits lacking it ends the branch.
    The splits are interchangeable here (proportions are left to the groups not
    placed), so a dead end is remembered up to their order.

    Parameters
    ----------
    holds : ndarray of bool
        Groups x classes: does the group hold a sample of the class?
    n_splits : int
    rank : ndarray of int, optional
        Preference among groups of a kind (lowest first); default the group order.

    Returns
    -------
    ndarray or None
        The split of each chosen group (at most one per class and split), -1 for
        the groups left free; None when no split has every class in every split.

    Raises
    ------
    _SearchLimit
        After :data:`_SEARCH_STEPS` steps without an answer.
    """
    n_groups, n_classes = holds.shape
    assigned = np.full(n_groups, -1)
    if n_classes == 0:
        return assigned
    if (holds.sum(axis=0) < n_splits).any():
        return None
    rank = np.arange(n_groups) if rank is None else rank
    useful = np.flatnonzero(holds.any(axis=1))
    useful = useful[np.argsort(rank[useful], kind="stable")]
    rows, first, kind_of = np.unique(holds[useful], axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # kinds in the rank order of their best member
    rows, kind_of = rows[order], np.argsort(order)[kind_of.ravel()]
    members = [useful[kind_of == k] for k in range(len(rows))]  # best ranked first
    masks = [sum(1 << c for c in np.flatnonzero(row)) for row in rows]
    kinds_of_class = [[k for k, mask in enumerate(masks) if mask >> c & 1] for c in range(n_classes)]
    everything = (1 << n_classes) - 1
    dead_ends: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    steps = 0

    def search(covered: tuple[int, ...], left: tuple[int, ...]) -> list[tuple[int, int]] | None:
        nonlocal steps
        steps += 1
        if steps > _SEARCH_STEPS:
            raise _SearchLimit(_SEARCH_STEPS)
        if all(mask == everything for mask in covered):
            return []
        key = (tuple(sorted(covered)), left)
        if key in dead_ends:
            return None
        choice = None
        for c in range(n_classes):
            lacking = [s for s in range(n_splits) if not covered[s] >> c & 1]
            if not lacking:
                continue
            kinds = [k for k in kinds_of_class[c] if left[k]]
            if sum(left[k] for k in kinds) < len(lacking):
                dead_ends.add(key)
                return None
            if choice is None or len(kinds) < len(choice[2]):
                choice = (c, lacking[0], kinds)
        _, split, kinds = choice
        gain = [(masks[k] & ~covered[split]).bit_count() for k in range(len(masks))]
        for k in sorted(kinds, key=lambda k: (-gain[k], k)):  # kinds are in rank order of their best member
            rest = search(
                covered[:split] + (covered[split] | masks[k],) + covered[split + 1 :],
                left[:k] + (left[k] - 1,) + left[k + 1 :],
            )
            if rest is not None:
                return [(split, k), *rest]
        dead_ends.add(key)
        return None

    picks = search((0,) * n_splits, tuple(min(len(m), n_splits) for m in members))
    if picks is None:
        return None
    used = [0] * len(members)
    for split, k in picks:
        assigned[members[k][used[k]]] = split
        used[k] += 1
    return assigned

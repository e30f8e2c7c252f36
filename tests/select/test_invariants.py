"""The split invariants, on random catalogs with random patient structures.

On small catalogs a brute force over every patient -> split assignment decides
whether a valid split exists (no patient in two splits, every class held by
enough patients in every split, every share within the stated tolerance):
``make_split`` must find one whenever one exists, and otherwise leave out of a
split only classes that cannot be everywhere along with the others, each named
in a note of ``check_split`` saying why.

Under ``CI`` the examples are derandomized (the "ci" profile of tests/conftest.py):
every run draws the same ones. Without it (the "explore" profile) every run draws
fresh ones. A nightly-style exploration is a loop over seeds, each of which
reruns exactly (``--hypothesis-seed`` takes a number; any text is a fixed seed too,
so ``--hypothesis-seed=random`` is not random)::

    for s in $(seq 1 20); do
        .venv/bin/python -m pytest tests/select/test_invariants.py -q -p no:cacheprovider --hypothesis-seed=$s || break
    done

or runs with fresh draws, forcing the profile where ``CI`` is set::

    HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest tests/select/test_invariants.py

CI's own draws: ``CI=true .venv/bin/python -m pytest tests/select/test_invariants.py``.
A failure prints the shrunk catalog; it belongs in tests/select/test_splits.py as a plain test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from curate.select import (
    apply_frozen_split,
    check_split,
    freeze_split,
    make_split,
    parse_fractions,
    proportion_tolerance,
    read_frozen_split,
)
from curate.select.splits import _place_by_size, patient_groups

FRACTIONS = [(0.7, 0.1, 0.2), (0.8, 0.2), (0.6, 0.2, 0.2), (0.5, 0.25, 0.25), (0.9, 0.05, 0.05), (0.34, 0.33, 0.33)]


@st.composite
def catalogs(draw):
    """1-4 samples per patient, 2-6 classes with skewed frequencies (some rare), knees of one
    patient often sharing a grade, and now and then a sample without patient id."""
    patients = draw(st.integers(3, 120))
    classes = draw(st.integers(2, 6))
    weights = draw(st.lists(st.floats(0.01, 1.0), min_size=classes, max_size=classes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p = np.asarray(weights) / sum(weights)
    rows = []
    for i in range(patients):
        own = int(rng.choice(classes, p=p))
        for j in range(int(rng.integers(1, 5))):
            label = own if rng.random() < 0.6 else int(rng.choice(classes, p=p))
            patient = None if rng.random() < 0.03 else f"p{i}"
            rows.append({"sample_id": f"s{i}_{j}", "patient_id": patient, "label": label})
    catalog = pd.DataFrame(rows)
    catalog["patient_id"] = catalog["patient_id"].astype("string")
    return catalog


@st.composite
def small_cases(draw, max_groups: int = 7):
    """(catalog, fractions): at most ``max_groups`` patient groups (3 ** 7 = 2,187 assignments to try).

    Each of 2-5 classes is held by a few of a small core of patients, most often by exactly as many
    as there are splits: such classes force their patients apart, and a few sharing patients make
    the tangles where no split has every class everywhere (some 7% of the cases). Each patient has
    one sample of each class it holds and maybe more, or one sample of any class when it holds none;
    maybe a sample without patient id and an unlabelled sample.
    """
    fractions = draw(st.sampled_from(FRACTIONS))
    n_splits = len(fractions)
    classes = draw(st.integers(2, 5))
    alone = draw(st.integers(0, 1))
    patients = draw(st.integers(2, max_groups - alone))
    core = min(patients, n_splits + draw(st.integers(0, 3)))
    holders = []
    for _ in range(classes):
        tight = draw(st.sampled_from([True, True, True, False]))
        n = min(core, n_splits if tight else draw(st.integers(1, n_splits + 1)))
        holders.append(set(draw(st.lists(st.integers(0, core - 1), min_size=n, max_size=n, unique=True))))
    rows = []
    for i in range(patients):
        held = [c for c in range(classes) if i in holders[c]] or [draw(st.integers(0, classes - 1))]
        held += draw(st.lists(st.sampled_from(held), max_size=2))
        rows += [{"sample_id": f"s{i}_{j}", "patient_id": f"p{i}", "label": c} for j, c in enumerate(held)]
    if alone:
        rows.append({"sample_id": "a0", "patient_id": None, "label": draw(st.integers(0, classes - 1))})
    if draw(st.booleans()):
        rows[draw(st.integers(0, len(rows) - 1))]["label"] = None
    catalog = pd.DataFrame(rows)
    catalog["patient_id"] = catalog["patient_id"].astype("string")
    catalog["label"] = catalog["label"].astype("Int64")
    return catalog, fractions


def _crossing_patients(table: pd.DataFrame) -> int:
    return int((table["split"].groupby(patient_groups(table)).nunique() > 1).sum())


def _missing_note(notes: tuple[str, ...], label) -> str | None:
    return next((n for n in notes if n.startswith(f"class {label} is missing from ")), None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog=catalogs(), fractions=st.sampled_from(FRACTIONS), seed=st.integers(0, 10**6))
def test_new_split_keeps_every_invariant(catalog, fractions, seed):
    named = parse_fractions(fractions)
    table = make_split(catalog, fractions=fractions, seed=seed)
    assert table["split"].notna().all()
    # 1. no patient in two splits
    assert _crossing_patients(table) == 0
    check = check_split(table, fractions=named)
    assert check.ok, check.violations
    # 2. every class in every split when it has enough patients and fits with the others; a note when not
    groups = patient_groups(table)
    for label, rows in table.groupby("label"):
        holders = groups[rows.index].nunique()
        if set(rows["split"]) == set(named):
            continue
        if holders >= len(named):
            assert "cannot all be in every split" in (_missing_note(check.notes, label) or ""), check.notes
        else:
            assert any(note.startswith(f"class {label} has {holders} patient(s)") for note in check.notes)
    # 3. proportions within the stated tolerance
    shares = table["split"].value_counts(normalize=True)
    allowed = proportion_tolerance(table, splits=len(named))
    assert all(abs(shares.get(name, 0.0) - f) <= allowed for name, f in named.items())
    # deterministic
    pd.testing.assert_frame_equal(table, make_split(catalog, fractions=fractions, seed=seed))


class _BruteForce:
    """Every assignment of a small catalog's patient groups to ``n_splits`` splits, judged at once."""

    def __init__(self, catalog: pd.DataFrame, n_splits: int, fractions: np.ndarray) -> None:
        counts = pd.crosstab(patient_groups(catalog), catalog["label"].astype("string").fillna("<NA>"))
        sizes = counts.sum(axis=1).to_numpy()
        holds = counts.drop(columns="<NA>", errors="ignore") > 0
        self.required = holds.columns[holds.sum() >= n_splits]  # the classes that can be everywhere one by one
        every = np.array(list(itertools.product(range(n_splits), repeat=len(counts))))
        onehot = every[:, :, None] == np.arange(n_splits)  # assignments x groups x splits
        # present[a, s, c]: assignment a has class c in split s
        self.present = np.einsum("ags,gc->asc", onehot, holds[self.required].to_numpy().astype(int)) > 0
        shares = (onehot * sizes[None, :, None]).sum(axis=1) / sizes.sum()
        # written out, not proportion_tolerance: the oracle shares no code with what it judges
        tolerance = 0.02 + max(n_splits - 1, 1) * counts.shape[1] * sizes.max() / sizes.sum()
        self.within = (np.abs(shares - fractions) <= tolerance).all(axis=1)

    def everywhere(self, classes) -> np.ndarray:
        """Per assignment: are all these classes in every split?"""
        return self.present[:, :, self.required.get_indexer(list(classes))].all(axis=(1, 2))

    def valid_exists(self) -> bool:
        return bool((self.everywhere(self.required) & self.within).any())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=small_cases(), seed=st.integers(0, 10**6))
def test_new_split_is_valid_whenever_brute_force_finds_a_valid_one(case, seed):
    catalog, fractions = case
    named = parse_fractions(fractions)
    brute = _BruteForce(catalog, len(named), np.array(list(named.values())))
    table = make_split(catalog, fractions=fractions, seed=seed)
    check = check_split(table, fractions=named)
    assert check.ok, check.violations  # so `curate select` accepts it
    assert _crossing_patients(table) == 0
    shares = table["split"].value_counts(normalize=True)
    allowed = proportion_tolerance(table, splits=len(named))
    assert all(abs(shares.get(name, 0.0) - f) <= allowed for name, f in named.items())

    labels = table["label"].astype("string")
    in_all = [c for c in brute.required if set(table.loc[labels == c, "split"]) == set(named)]
    left_out = [c for c in brute.required if c not in in_all]
    if brute.valid_exists():
        event("a valid split exists")
        assert left_out == [], check.notes
        return
    event("no valid split exists")
    # Whole patients never make the proportions impossible: only classes that cannot all be everywhere do.
    assert not brute.everywhere(brute.required).any()
    assert left_out
    for label in left_out:
        # best possible: with the classes the split has everywhere, no assignment has this one too ...
        assert not brute.everywhere([*in_all, label]).any()
        # ... and a note names it and says why
        note = _missing_note(check.notes, label)
        assert note is not None and "cannot all be in every split, as the" in note, check.notes


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=40),
    fractions=st.sampled_from(FRACTIONS),
    placed=st.integers(0, 3),
    data=st.data(),
)
def test_whole_patients_never_put_a_split_beyond_the_tolerance(sizes, fractions, placed, data):
    # Why no proportion is ever impossible: with at most one holder per class already in each split,
    # filling by size leaves every split within (splits - 1) x classes x largest patient of its target,
    # the part of the tolerance that whole patients force.
    sizes, fractions, n_splits = np.array(sizes), np.array(fractions), len(fractions)
    assigned = np.full(len(sizes), -1)
    order = data.draw(st.permutations(range(len(sizes))))
    for split in range(n_splits):
        assigned[list(order[split * placed : (split + 1) * placed])] = split
    _place_by_size(sizes, fractions, np.arange(len(sizes)), assigned)
    filled = np.bincount(assigned, weights=sizes, minlength=n_splits)
    assert (np.abs(filled - fractions * sizes.sum()) <= (n_splits - 1) * max(placed, 1) * sizes.max() + 1e-9).all()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(catalog=catalogs(), extra=st.integers(1, 30), seed=st.integers(0, 10**6))
def test_reused_frozen_split_never_moves_a_sample_and_keeps_patients_together(tmp_path, catalog, extra, seed):
    path = tmp_path / f"split-{seed}.parquet"
    table = make_split(catalog, seed=seed)
    freeze_split(table, path)
    rng = np.random.default_rng(seed)
    # new samples: some of known patients, some of new ones
    known = catalog["patient_id"].dropna().unique()
    new = pd.DataFrame(
        {
            "sample_id": [f"new{k}" for k in range(extra)],
            "patient_id": pd.array(
                [str(rng.choice(known)) if len(known) and rng.random() < 0.5 else f"q{k}" for k in range(extra)],
                dtype="string",
            ),
            "label": rng.integers(0, 3, extra),
        }
    )
    grown = pd.concat([catalog, new], ignore_index=True).sample(frac=1.0, random_state=seed)
    reused = apply_frozen_split(grown, read_frozen_split(path))
    by_id = reused.set_index("sample_id")["split"]
    assert (by_id.loc[table["sample_id"]].to_numpy() == table["split"].to_numpy()).all()
    assert _crossing_patients(reused) == 0
    assert reused.attrs["split"]["kept"] == len(catalog)
    assert reused.attrs["split"]["new_by_patient"] + reused.attrs["split"]["new_by_hash"] == extra
    again = apply_frozen_split(grown.sort_values("sample_id"), read_frozen_split(path))
    assert again.set_index("sample_id")["split"].loc[by_id.index].equals(by_id)


def test_check_split_reports_each_violation():
    table = pd.DataFrame(
        {
            "sample_id": list("abcdefgh"),
            "patient_id": ["p1", "p1", "p2", "p3", "p4", "p5", "p6", "p7"],
            "label": [0, 0, 0, 1, 1, 1, 0, 0],
            "split": ["train", "test", "train", "train", "train", "train", "test", "test"],
        }
    )
    check = check_split(table, fractions={"train": 0.5, "test": 0.5})
    assert check.violations == (
        "1 patient(s) in more than one split: patient p1 (train, test)",
        "class 1 is missing from test though 3 patients hold it",
    )
    official = check_split(table, require_every_class=False)
    assert official.violations == check.violations[:1]
    assert official.notes == ("class 1 is missing from test (it is in train)",)


def test_check_split_reports_proportions_beyond_the_tolerance():
    table = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(100)],
            "patient_id": [f"p{i}" for i in range(100)],
            "label": [i % 2 for i in range(100)],
            "split": ["train"] * 80 + ["test"] * 20,
        }
    )
    assert proportion_tolerance(table) == 0.02 + 2 * 1 / 100
    check = check_split(table, fractions={"train": 0.7, "test": 0.3})
    assert check.violations == (
        "split train holds 0.800 of the samples, 0.7 asked (tolerance 0.040)",
        "split test holds 0.200 of the samples, 0.3 asked (tolerance 0.040)",
    )
    assert check_split(table, fractions={"train": 0.77, "test": 0.23}).ok

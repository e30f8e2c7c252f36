"""A synthetic knee-radiograph dataset in the public KL layout, with known injected faults.

:func:`make_demo` writes ``OUT_DIR/{train,val,test}/{0..4}/<participant><L|R>.png``: 224x224
PA knee radiographs whose Kellgren-Lawrence (KL) grade is visible the way it is on real ones
(joint-space narrowing, osteophytes, subchondral sclerosis, bone-end deformity), with the class
counts of the public Chen 2018 set. A known set of faults is injected into some of the slots
(duplicates, near duplicates, broken files, bad exposures, wrong labels, DICOM copies...) and
listed in ``OUT_DIR/faults.csv``, so that every later stage can be checked against the truth.

Everything is decided up front by :func:`plan_demo` and every image is drawn from its own
random stream, derived from ``(seed, slot index)``; the output is therefore byte-identical for
a seed and scale whatever the number of worker processes and their scheduling.

Faults replace planned files, so the class counts stay exact. A file carries at most one fault,
except a DICOM copy that also has ``dicom_laterality_mismatch``. Copies are made from clean files.

===============================  ============================================================
``exact_duplicate``              byte copy of a clean file of the same grade, a third from
                                 another split (details ``copy of <path>``)
``near_duplicate``               ``<kind> of <path>``, kind one of :data:`NEAR_DUPLICATE_KINDS`;
                                 a few are filed under an adjacent grade (``label conflict``)
``dark``, ``overexposed``        mean brightness 0.03-0.07, resp. above 0.9 and mostly saturated
``blurred``                      gaussian blur, sigma 3-4 px: no texture, no sharp edge
``blank``                        uniform gray with faint noise, or all black
``truncated``                    a PNG cut to half its bytes
``zero_bytes``                   an empty file
``not_an_image``                 an HTML error page under the ``.png`` name
``label_flip_adjacent``          a knee of grade g filed under g +- 1, its severity on the
                                 side of the grade it is filed under (readers disagree
                                 where a knee leans towards the next grade)
``label_flip_distant``           a knee of grade g filed at least two grades away
``wrong_body_part``              a chest or hand radiograph
``bits16``                       16-bit PNG: 12-bit values, or full range (x257); not a defect
``dicom_copy``                   the file is ``<id><side>.dcm`` (Secondary Capture, DX or CR,
                                 12/16-bit, a third MONOCHROME1), decoding to the same picture
``dicom_laterality_mismatch``    ImageLaterality contradicts the file name (on a dicom_copy)
``wrong_modality``               a ``.dcm`` knee whose Modality is MR or CT
===============================  ============================================================

``true_label`` in ``faults.csv`` is the grade the pixels show; it differs from the grade
folder exactly for the label flips and near-duplicate label conflicts, and is empty for files
that show no decodable knee (blank, truncated, zero bytes, not an image, wrong body part).

Examples
--------
>>> plan = plan_demo(seed=0, scale=1.0)
>>> plan.total
8260
>>> summary = make_demo("demo_data", seed=0, progress=None)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from curate._io import atomic_directory
from curate.errors import CurateError
from curate.imaging import to_uint8

__all__ = [
    "SPLITS",
    "GRADES",
    "IMAGE_SIZE",
    "DEFAULT_COUNTS",
    "FAULT_TYPES",
    "NEAR_DUPLICATE_KINDS",
    "FAULTS_CSV_COLUMNS",
    "KneeKey",
    "Slot",
    "DemoPlan",
    "DemoSummary",
    "scaled_counts",
    "plan_demo",
    "make_demo",
    "render_knee",
    "render_slot",
    "KNEE_TRUTH_COLUMNS",
    "knee_truth",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
GRADES: tuple[int, ...] = (0, 1, 2, 3, 4)
IMAGE_SIZE = 224

#: Images per split and KL grade 0-4 in the public Chen 2018 set (8,260 in all).
DEFAULT_COUNTS: dict[str, tuple[int, ...]] = {
    "train": (2286, 1046, 1516, 757, 173),
    "val": (328, 153, 212, 106, 27),
    "test": (639, 296, 447, 223, 51),
}

#: How many of each fault the default scale injects; other scales multiply these (at least 2 each).
_FAULTS_AT_SCALE_1: dict[str, int] = {
    "exact_duplicate": 24,
    "near_duplicate": 40,
    "dark": 15,
    "overexposed": 15,
    "blurred": 15,
    "blank": 8,
    "truncated": 8,
    "zero_bytes": 6,
    "not_an_image": 6,
    "label_flip_adjacent": 60,
    "label_flip_distant": 40,
    "wrong_body_part": 8,
    "bits16": 30,
    "dicom_copy": 30,
    "dicom_laterality_mismatch": 6,
    "wrong_modality": 3,
}
FAULT_TYPES: tuple[str, ...] = tuple(_FAULTS_AT_SCALE_1)
NEAR_DUPLICATE_KINDS: tuple[str, ...] = ("jpeg_reencoded", "resized", "shifted", "brightened", "converted_16bit")
_NEAR_PER_KIND_AT_SCALE_1 = 8
_NEAR_CONFLICTS_AT_SCALE_1 = 5
FAULTS_CSV_COLUMNS: tuple[str, ...] = ("file", "fault", "details", "true_label")

# Faults whose file shows no decodable knee: they have no true label.
_NO_KNEE_FAULTS = frozenset({"blank", "truncated", "zero_bytes", "not_an_image", "wrong_body_part"})

# Independent random streams. Every key is [seed, stream, a, b]: always four numbers, because
# SeedSequence does not tell [1, 2] from [1, 2, 0].
_PLAN, _KNEE, _PARTICIPANT, _FAULT, _OTHER = 1, 2, 3, 4, 5

# Grade-dependent signs, tabulated at KL 0..4 and interpolated at a knee's own "severity"
# (its grade plus noise), so adjacent grades overlap and distant ones do not.
_JSW_MEDIAL = (10.0, 8.6, 6.8, 4.4, 2.0)  # joint-space width in px at scale 1
_JSW_LATERAL = (9.5, 9.0, 8.2, 6.8, 5.0)
_OSTEOPHYTE = (0.0, 1.8, 4.2, 7.0, 10.0)  # spur length in px
# Kellgren-Lawrence grade 2 is defined by definite osteophytes (grade 1 has only possible
# lipping), and grade 4 by definite deformity of the bone ends: a knee of those grades whose
# severity fell towards the grade below still shows them, at least this large.
_DEFINITE_OSTEOPHYTE = 3.6  # px, grade 2 and up
_DEFINITE_DEFORMITY = 0.5  # grade 4
_SCLEROSIS = (0.0, 0.0, 0.04, 0.2, 0.32)  # extra attenuation of the subchondral band
_CYSTS = (0.0, 0.0, 0.1, 0.5, 1.3)  # mean number of subchondral cysts
# A knee's severity is its grade plus this much noise (sd, in grades): adjacent grades overlap
# (a knee in ~5% of cases looks more like its neighbour, as readers disagree), distant ones
# practically never (under 1 in 2,000), so a flip of two or more grades is a real error.
_SEVERITY_SD = 0.3
_JSW_SD = 0.8  # px: each compartment's width also varies at a given severity


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class KneeKey:
    """Which synthetic knee a file shows: enough to render it again, identically."""

    index: int  # the slot whose random stream draws the knee
    grade: int  # the KL grade the pixels show
    side: str
    participant: str
    lean: int = 0  # -1 / +1: the knee's severity lies on the side of the grade below / above


@dataclass(frozen=True)
class Slot:
    """One file of the demo: where it goes, and what is written there.

    ``label`` is the grade folder the file is filed under; ``knee`` says which knee the
    pixels show (None when the file shows no knee); ``source`` is the index of the slot whose
    image a copy is made from.
    """

    index: int
    split: str
    label: int
    participant: str
    side: str
    relpath: str
    knee: KneeKey | None
    fault: str | None = None
    details: str = ""
    source: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    extra_faults: tuple[tuple[str, str], ...] = ()

    @property
    def true_label(self) -> int | None:
        """The grade the pixels really show, or None when the file shows no decodable knee."""
        if self.knee is None or self.fault in _NO_KNEE_FAULTS:
            return None
        return self.knee.grade

    def fault_rows(self) -> list[tuple[str, str, str, str]]:
        """This slot's rows of ``faults.csv`` (none for a clean slot)."""
        if self.fault is None:
            return []
        label = "" if self.true_label is None else str(self.true_label)
        faults = ((self.fault, self.details), *self.extra_faults)
        return [(self.relpath, fault, details, label) for fault, details in faults]


@dataclass(frozen=True)
class DemoPlan:
    """Every slot of a demo dataset, decided before any image is drawn.

    ``total`` (also ``len(plan)``) is the number of files :func:`make_demo` writes, i.e. the
    number of ``progress`` advances: use it to size a progress bar.
    """

    seed: int
    scale: float
    counts: dict[str, tuple[int, ...]]
    slots: tuple[Slot, ...]

    @property
    def total(self) -> int:
        return len(self.slots)

    def __len__(self) -> int:
        return len(self.slots)

    def fault_rows(self) -> list[tuple[str, str, str, str]]:
        """The rows of ``faults.csv``: (file, fault, details, true_label), sorted by file then fault."""
        rows = [row for slot in self.slots for row in slot.fault_rows()]
        return sorted(rows, key=lambda row: (row[0], row[1]))

    def fault_counts(self) -> dict[str, int]:
        """How many files carry each fault type, in :data:`FAULT_TYPES` order."""
        counted = Counter(row[1] for row in self.fault_rows())
        return {fault: counted[fault] for fault in FAULT_TYPES}


def scaled_counts(scale: float = 1.0) -> dict[str, tuple[int, ...]]:
    """Images per split and grade at ``scale``: ``max(1, round(count * scale))`` of the defaults.

    Examples
    --------
    >>> scaled_counts(0.02)["val"]
    (7, 3, 4, 2, 1)
    """
    _check_scale(scale)
    return {split: tuple(max(1, round(n * scale)) for n in row) for split, row in DEFAULT_COUNTS.items()}


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CurateError(f"the demo seed must be a whole number >= 0, not {seed!r}")
    return int(seed)


def _check_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise CurateError(f"the demo scale must be a number > 0, not {scale!r}")
    return float(scale)


def _fault_budget(scale: float) -> tuple[dict[str, int], int, int]:
    """Fault counts at ``scale``, near duplicates per kind, and near-duplicate label conflicts."""
    budget = {fault: max(2, round(n * scale)) for fault, n in _FAULTS_AT_SCALE_1.items()}
    per_kind = max(1, round(_NEAR_PER_KIND_AT_SCALE_1 * scale))
    budget["near_duplicate"] = per_kind * len(NEAR_DUPLICATE_KINDS)
    # Keep clean DICOM copies beside the mismatched ones, so both photometrics occur clean.
    budget["dicom_copy"] = max(budget["dicom_copy"], budget["dicom_laterality_mismatch"] + 2)
    conflicts = min(max(1, round(_NEAR_CONFLICTS_AT_SCALE_1 * scale)), budget["near_duplicate"])
    return budget, per_kind, conflicts


def plan_demo(seed: int = 0, scale: float = 1.0) -> DemoPlan:
    """Decide every file of the demo: participants, sides, grades and injected faults.

    Parameters
    ----------
    seed : int
        Seed of every random choice (>= 0).
    scale : float
        Multiplies the class counts of :data:`DEFAULT_COUNTS` (see :func:`scaled_counts`)
        and the fault counts (at least 2 of each fault type).

    Returns
    -------
    DemoPlan
        Its ``total`` is the number of files :func:`make_demo` will write.

    Raises
    ------
    CurateError
        For a bad seed or scale, or a scale too small to hold the injected faults.
    """
    seed, scale = _check_seed(seed), _check_scale(scale)
    counts = scaled_counts(scale)
    rng = np.random.default_rng([seed, _PLAN, 0, 0])
    people = _assign_participants(counts, rng)
    slots = _FaultPlanner(people, scale, rng).run()
    return DemoPlan(seed=seed, scale=scale, counts=counts, slots=tuple(slots))


def _assign_participants(counts: dict[str, tuple[int, ...]], rng: np.random.Generator) -> list[tuple]:
    """Pair the knees of each split into participants; return sorted (split, label, pid, side).

    Sorting grades with noise and pairing neighbours makes a participant's two grades
    correlated, as they are in real data, without making them equal.
    """
    per_split = {split: sum(row) for split, row in counts.items()}
    n_people = sum((n + 1) // 2 for n in per_split.values())
    # OAI-style ids: seven digits starting with 9, unique over the whole set (so no participant
    # is in two splits).
    ids = 9_000_000 + rng.choice(1_000_000, size=n_people, replace=False)
    next_id = iter(int(i) for i in ids)
    people = []
    for split in SPLITS:
        labels = np.repeat(np.arange(len(GRADES)), counts[split])
        order = np.argsort(labels + rng.normal(0.0, 1.0, len(labels)), kind="stable")
        ranked = labels[order]
        for start in range(0, len(ranked), 2):
            pid = str(next(next_id))
            sides = ("L", "R") if rng.random() < 0.5 else ("R", "L")
            for label, side in zip(ranked[start : start + 2], sides, strict=False):  # the last may be alone
                people.append((split, int(label), pid, side))
    people.sort(key=lambda p: (SPLITS.index(p[0]), p[1], p[2], p[3]))
    return people


class _FaultPlanner:
    """Chooses which slots carry which fault; copies take their image from clean slots."""

    def __init__(self, people: list[tuple], scale: float, rng: np.random.Generator) -> None:
        self.people = people
        self.rng = rng
        self.budget, self.per_kind, self.conflicts = _fault_budget(scale)
        self.split = np.array([SPLITS.index(p[0]) for p in people])
        self.label = np.array([p[1] for p in people])
        self.free = np.ones(len(people), dtype=bool)  # neither faulted nor a copy's source
        self.order = [int(i) for i in rng.permutation(len(people))]
        self.cursor = 0
        self.assigned: dict[int, dict[str, Any]] = {}

    # -- picking slots

    def _target(self) -> int:
        """The next free slot in the shuffled order; it is taken (no longer free)."""
        index = None
        while self.cursor < len(self.order) and index is None:
            candidate = self.order[self.cursor]
            self.cursor += 1
            if self.free[candidate]:
                index = candidate
        if index is None:
            needed = sum(self.budget.values())
            raise CurateError(
                f"demo scale too small: {len(self.people)} images cannot hold the {needed} injected "
                "faults and their clean sources; use a larger scale (0.01 or more)"
            )
        self.free[index] = False
        return index

    def _source(self, target: int, grades: Iterable[int], cross: bool) -> int | None:
        """A clean slot of one of ``grades``, in another split when ``cross``, else the same
        (the other kind of split is the fallback). Each source serves one copy.
        """
        grade_ok = np.isin(self.label, list(grades))
        same = self.split == self.split[target]
        for split_ok in (~same, same) if cross else (same, ~same):
            candidates = np.flatnonzero(self.free & grade_ok & split_ok)
            if len(candidates):
                return int(self.rng.choice(candidates))
        return None

    def _copy_target(self, grades_for: Callable[[int], list[int]], cross: bool) -> tuple[int, int]:
        """A target slot and a clean source for it (targets without a source are passed over)."""
        passed: list[int] = []
        while True:
            target = self._target()
            source = self._source(target, grades_for(int(self.label[target])), cross)
            if source is not None:
                self.free[passed] = True  # give the passed-over slots back to later faults
                self.free[source] = False  # a source stays clean: no fault may land on it
                return target, source
            passed.append(target)

    # -- the faults

    def run(self) -> list[Slot]:
        self._duplicates()
        self._label_flips()
        self._simple_faults()
        self._dicom()
        return self._slots()

    def _relpath(self, index: int, suffix: str = ".png") -> str:
        split, label, pid, side = self.people[index]
        return f"{split}/{label}/{pid}{side}{suffix}"

    def _duplicates(self) -> None:
        for i in range(self.budget["exact_duplicate"]):
            target, source = self._copy_target(lambda g: [g], cross=i % 3 == 0)
            self.assigned[target] = {
                "fault": "exact_duplicate",
                "source": source,
                "details": f"copy of {self._relpath(source)}",
            }
        kinds = [kind for kind in NEAR_DUPLICATE_KINDS for _ in range(self.per_kind)]
        conflicts = set(int(i) for i in self.rng.choice(len(kinds), size=self.conflicts, replace=False))
        for i, kind in enumerate(kinds):
            conflict = i in conflicts
            adjacent = lambda g: [h for h in (g - 1, g + 1) if h in GRADES]  # noqa: E731
            target, source = self._copy_target(adjacent if conflict else (lambda g: [g]), cross=i % 3 == 1)
            details = f"{kind} of {self._relpath(source)}"
            if conflict:
                details += f"; label conflict: the source is filed under grade {self.label[source]}"
            self.assigned[target] = {
                "fault": "near_duplicate",
                "source": source,
                "details": details,
                "options": {"kind": kind, **self._near_options(kind, i)},
            }

    def _near_options(self, kind: str, i: int) -> dict[str, Any]:
        if kind == "jpeg_reencoded":
            return {"quality": int(self.rng.integers(75, 86))}
        if kind == "resized":
            return {"size": (256, 200)[i % 2]}
        if kind == "shifted":
            dx, dy = self.rng.integers(2, 5, size=2) * self.rng.choice([-1, 1], size=2)
            return {"dx": int(dx), "dy": int(dy)}
        if kind == "brightened":
            return {"factor": round(float(self.rng.uniform(1.05, 1.10)), 3)}
        return {}

    def _label_flips(self) -> None:
        for fault, far in (("label_flip_adjacent", False), ("label_flip_distant", True)):
            for _ in range(self.budget[fault]):
                target = self._target()
                filed = int(self.label[target])
                choices = [g for g in GRADES if (abs(g - filed) >= 2 if far else abs(g - filed) == 1)]
                shown = int(self.rng.choice(choices))
                self.assigned[target] = {
                    "fault": fault,
                    "grade": shown,
                    # Readers disagree where a knee leans towards the next grade: an adjacent
                    # grade is filed for a knee whose severity lies on that side of its own. A distant
                    # flip is a clerical error (another row, a typo) and has nothing to do with
                    # what the knee looks like.
                    "lean": 0 if far else filed - shown,
                    "details": f"shows grade {shown}, filed under grade {filed}",
                }

    def _simple_faults(self) -> None:
        for _ in range(self.budget["dark"]):
            mean = round(float(self.rng.uniform(0.03, 0.07)), 3)
            self._put("dark", f"exposure crushed to a mean brightness of {mean}", mean=mean)
        for _ in range(self.budget["overexposed"]):
            mean = round(float(self.rng.uniform(0.92, 0.97)), 3)
            self._put("overexposed", f"saturated, mean brightness {mean}", mean=mean)
        for _ in range(self.budget["blurred"]):
            sigma = round(float(self.rng.uniform(3.0, 4.0)), 2)
            self._put("blurred", f"gaussian blur, sigma {sigma} px", sigma=sigma)
        for i in range(self.budget["blank"]):
            if i % 2:
                self._put("blank", "all black", level=0.0)
            else:
                level = round(float(self.rng.uniform(0.2, 0.8)), 3)
                self._put("blank", f"uniform gray {level} with faint noise", level=level)
        self._put_many("truncated", "a valid PNG cut to half its bytes")
        self._put_many("zero_bytes", "empty file")
        self._put_many("not_an_image", "an HTML error page saved under the image's name")
        for i in range(self.budget["wrong_body_part"]):
            part = ("chest", "hand")[i % 2]
            self._put("wrong_body_part", f"a {part} radiograph", part=part)
        for i in range(self.budget["bits16"]):
            full = i % 3 == 2
            what = "full-range 16-bit values (x257)" if full else "12-bit values in a 16-bit container"
            self._put("bits16", f"16-bit PNG, {what}", full_range=full)

    def _put(self, fault: str, details: str, **options: Any) -> int:
        target = self._target()
        self.assigned[target] = {"fault": fault, "details": details, "options": options}
        return target

    def _put_many(self, fault: str, details: str) -> None:
        for _ in range(self.budget[fault]):
            self._put(fault, details)

    def _dicom(self) -> None:
        n_copies = self.budget["dicom_copy"]
        mismatched = set(range(n_copies - self.budget["dicom_laterality_mismatch"], n_copies))
        for i in range(n_copies):
            options = {
                "photometric": "MONOCHROME1" if i % 3 == 0 else "MONOCHROME2",
                "bits": 16 if i % 2 else 12,
                "modality": "CR" if i % 5 == 4 else "DX",
            }
            target = self._put("dicom_copy", "", **options)
            options = self.assigned[target]["options"]
            side = self.people[target][3]
            options["laterality"] = side
            extra: tuple[tuple[str, str], ...] = ()
            if i in mismatched:
                options["laterality"] = "L" if side == "R" else "R"
                extra = (
                    ("dicom_laterality_mismatch", f"ImageLaterality {options['laterality']}, file name says {side}"),
                )
            self.assigned[target]["details"] = (
                f"DICOM {options['modality']}, {options['photometric']}, {options['bits']}-bit stored values"
            )
            self.assigned[target]["extra_faults"] = extra
        for i in range(self.budget["wrong_modality"]):
            modality = ("MR", "CT")[i % 2]
            target = self._put("wrong_modality", f"DICOM with Modality {modality}", modality=modality)
            self.assigned[target]["options"].update(
                photometric="MONOCHROME2", bits=16, laterality=self.people[target][3]
            )

    def _slots(self) -> list[Slot]:
        slots = []
        for index, (split, label, pid, side) in enumerate(self.people):
            spec = self.assigned.get(index, {})
            fault = spec.get("fault")
            suffix = ".dcm" if fault in ("dicom_copy", "wrong_modality") else ".png"
            source = spec.get("source")
            if source is not None:
                _, src_label, src_pid, src_side = self.people[source]
                knee = KneeKey(source, src_label, src_side, src_pid)
            elif fault in ("zero_bytes", "not_an_image", "blank", "wrong_body_part"):
                knee = None
            else:
                knee = KneeKey(index, spec.get("grade", label), side, pid, spec.get("lean", 0))
            slots.append(
                Slot(
                    index=index,
                    split=split,
                    label=label,
                    participant=pid,
                    side=side,
                    relpath=f"{split}/{label}/{pid}{side}{suffix}",
                    knee=knee,
                    fault=fault,
                    details=spec.get("details", ""),
                    source=source,
                    options=spec.get("options", {}),
                    extra_faults=spec.get("extra_faults", ()),
                )
            )
        return slots


# --------------------------------------------------------------------------- knee rendering

_MARGIN = 12  # the knee is drawn on a larger canvas, then rotated and cropped
_CANVAS = IMAGE_SIZE + 2 * _MARGIN


def _ramp(d: np.ndarray, width: float = 1.5) -> np.ndarray:
    """Soft inside-ness (0..1) of a signed distance in px (positive inside): an anti-aliased edge."""
    out = d * (1.0 / width) + 0.5
    return np.minimum(np.maximum(out, 0.0, out=out), 1.0, out=out)  # np.clip's wrapper costs more


def _dome(q: np.ndarray) -> np.ndarray:
    """Path length through a body whose outline is q = 1 (q = 0 at its middle): sqrt(1 - q), 0 outside."""
    return np.sqrt(np.maximum(1.0 - q, 0.0))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ellipse(u: np.ndarray, v: np.ndarray, cu: float, cv: float, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (first order, px) to an axis-aligned ellipse, and its normalized radius q.

    ``u`` is a row vector of columns, ``v`` a column vector of rows: the result broadcasts.
    """
    du, dv = (u - cu) / a, (v - cv) / b
    q = du * du + dv * dv
    grad = 2.0 * np.sqrt((du / a) ** 2 + (dv / b) ** 2) + 1e-6
    return (1.0 - q) / grad, q


@dataclass
class _Knee:
    """The drawn parameters of one knee (px at the 224 scale, local frame of a right knee).

    u runs from lateral (negative) to medial, v from the femur (negative) down to the tibia;
    the joint line is v = 0.
    """

    grade: int
    severity: float
    mirror: float
    zoom: float
    shift: tuple[float, float]
    angle: float
    jsw_lat: float
    jsw_med: float
    condyles: tuple[tuple[float, float, float], tuple[float, float, float]]  # (centre u, half-width, depth)
    squareness: float  # superellipse exponent of the condyles: 2 is round, larger is boxier
    notch: tuple[float, float, float]  # intercondylar notch: centre u, half-width, height
    femur_top: tuple[float, float]  # half-widths (lateral, medial) where the femur leaves the image
    plateau: tuple[float, float]  # tibial plateau half-widths (lateral, medial)
    tibia_bottom: float
    spines: tuple[float, float]  # tibial spine heights (lateral, medial)
    congruence: tuple[float, float]  # how far each plateau follows its condyle's curve (0 flat, 1 parallel)
    osteophytes: tuple[float, float, float, float]  # femur lat, femur med, tibia lat, tibia med
    sclerosis: float
    deformity: float
    cysts: list[tuple[float, float, float]]
    tissue: float
    tissue_width: float
    patella: tuple[float, float, float, float]
    fibula: tuple[float, float]  # head: gap below the plateau, radius
    texture: tuple[float, float, float]  # amplitude, grain, vertical streaks
    exposure: tuple[float, float, float]
    heel: float  # exposure falls off from one end of the film (the anode heel effect)
    noise: float
    contour_noise: np.ndarray


def _draw_knee(grade: int, side: str, rng: np.random.Generator, prng: np.random.Generator, lean: int = 0) -> _Knee:
    """Draw a knee's anatomy, grade signs and exposure; ``prng`` holds what both knees of a participant share.

    ``lean`` (-1, 0 or +1) puts the knee's severity on one side of its grade: the same draw,
    folded, so the knee is otherwise the one drawn without it.
    """
    # shared by a participant's two knees: body size, soft tissue, the exposure of the bilateral film
    body = float(np.clip(prng.normal(1.0, 0.045), 0.88, 1.12))
    tissue = float(prng.uniform(0.2, 0.34))
    tissue_width = float(prng.uniform(118, 140))
    base_gain, base_offset, base_gamma = prng.uniform(0.85, 1.05), prng.uniform(0.0, 0.08), prng.uniform(0.85, 1.3)
    heel = float(prng.uniform(-0.06, 0.06))

    deviation = rng.normal(0.0, _SEVERITY_SD)
    if lean:
        deviation = lean * abs(deviation)
    severity = float(np.clip(grade + deviation, -0.6, 4.6))
    sev = lambda table: float(np.interp(severity, GRADES, table))  # noqa: E731
    jsw_med = max(1.0, sev(_JSW_MEDIAL) + rng.normal(0.0, _JSW_SD))
    jsw_lat = max(1.5, sev(_JSW_LATERAL) + rng.normal(0.0, _JSW_SD))
    spur = max(sev(_OSTEOPHYTE), _DEFINITE_OSTEOPHYTE) if grade >= 2 else sev(_OSTEOPHYTE)
    osteophytes = tuple(
        float(spur * rng.uniform(0.55, 1.3) * weight) if spur > 0 else 0.0 for weight in (0.85, 1.15, 0.9, 1.2)
    )
    deformity = float(np.clip(severity - 3.3, _DEFINITE_DEFORMITY if grade == 4 else 0.0, 1.0))
    n_cysts = int(rng.poisson(sev(_CYSTS)))
    cysts = [
        (float(rng.uniform(-80, 85)), float(rng.choice([-1.0, 1.0]) * rng.uniform(5, 14)), float(rng.uniform(2.0, 4.0)))
        for _ in range(n_cysts)
    ]
    condyles = (
        (-float(rng.uniform(47, 52)), float(rng.uniform(44, 50)), float(rng.uniform(36, 44))),
        (float(rng.uniform(46, 51)), float(rng.uniform(44, 50)), float(rng.uniform(34, 42) * (1.0 + 0.3 * deformity))),
    )
    return _Knee(
        grade=grade,
        severity=severity,
        mirror=-1.0 if side == "L" else 1.0,
        zoom=body * float(rng.normal(1.0, 0.035)),
        shift=(float(rng.uniform(-10, 10)), float(rng.uniform(-10, 10))),
        angle=float(rng.uniform(-3.0, 3.0)),
        jsw_lat=float(jsw_lat),
        jsw_med=float(jsw_med),
        condyles=condyles,
        squareness=float(rng.uniform(2.0, 2.4) + 0.4 * deformity),
        notch=(float(rng.uniform(-3, 3)), float(rng.uniform(14, 19)), float(rng.uniform(22, 30))),
        femur_top=(float(rng.uniform(82, 92)), float(rng.uniform(80, 90))),
        plateau=(float(rng.uniform(97, 103)), float(rng.uniform(96, 102))),
        tibia_bottom=float(rng.uniform(70, 80)),
        spines=(float(rng.uniform(10, 14) + 0.8 * severity), float(rng.uniform(11, 15) + 0.8 * severity)),
        congruence=(float(rng.uniform(-0.2, 0.1)), float(rng.uniform(0.15, 0.4))),
        osteophytes=osteophytes,  # type: ignore[arg-type]
        sclerosis=float(max(0.0, sev(_SCLEROSIS) * rng.normal(1.0, 0.2))),
        deformity=deformity,
        cysts=cysts,
        tissue=tissue * float(rng.normal(1.0, 0.03)),
        tissue_width=tissue_width,
        patella=(
            float(rng.uniform(-4, 14)),
            float(rng.uniform(-80, -62)),
            float(rng.uniform(40, 50)),
            float(rng.uniform(0.06, 0.14)),
        ),
        fibula=(float(rng.uniform(12, 24)), float(rng.uniform(19, 24))),
        texture=(float(rng.uniform(0.22, 0.34)), float(rng.uniform(0.6, 0.9)), float(rng.uniform(0.8, 1.6))),
        exposure=(
            float(base_gain * rng.normal(1.0, 0.02)),
            float(base_offset + rng.normal(0.0, 0.005)),
            float(base_gamma * rng.normal(1.0, 0.02)),
        ),
        heel=heel,
        noise=float(rng.uniform(0.006, 0.016)),
        contour_noise=rng.normal(0.0, 1.0, 12),
    )


def _local_axes(k: _Knee) -> tuple[np.ndarray, np.ndarray]:
    """Local coordinates of the canvas columns (u, a row vector) and rows (v, a column vector)."""
    pixels = np.arange(_CANVAS, dtype=np.float32) - _MARGIN - (IMAGE_SIZE - 1) / 2.0
    u = k.mirror * (pixels - k.shift[0]) / k.zoom
    v = (pixels - k.shift[1]) / k.zoom
    return u[None, :], v[:, None]


def _texture(rng: np.random.Generator, k: _Knee) -> np.ndarray:
    """Trabecular texture, unit variance: a fine band-pass network plus vertical streaks."""
    amplitude, grain, streaks = k.texture
    # uniform noise is four times cheaper to draw than normal, and blurring makes it normal anyway
    noise = rng.random((_CANVAS, _CANVAS), dtype=np.float32) - 0.5
    band = ndimage.gaussian_filter(noise, grain, truncate=3.0)
    band += streaks * ndimage.gaussian_filter(noise, (2.6, 0.7), truncate=3.0)
    return band / (float(band[::4, ::4].std()) + 1e-6)


def _wobble(u: np.ndarray, k: _Knee, amplitude: float, phase: float = 0.0) -> np.ndarray:
    """A smooth irregular contour offset (px) along u: the uneven bone ends of grade 4."""
    if amplitude <= 0:
        return np.zeros_like(u)
    c = k.contour_noise
    out = np.zeros_like(u)
    for j in range(4):
        out += c[j] * np.sin(u * (0.035 + 0.025 * j) + c[j + 4] * 3.0 + phase)
    return amplitude * out / 2.0


def _medial_wobble(u: np.ndarray, k: _Knee) -> np.ndarray:
    """Bone-end irregularity shared by femur and tibia: mostly in the medial compartment."""
    return _wobble(u, k, 2.0 * k.deformity) * _smoothstep((u + 30.0) / 20.0)


def _superellipse(u, v, cu: float, cv: float, a: float, b: float, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (first order, px, positive inside) to |x/a|^p + |y/b|^p = 1, and that sum q."""
    x = np.abs(u - cu) / a + 1e-6
    y = np.abs(v - cv) / b + 1e-6
    xp, yp = x**p, y**p
    q = xp + yp
    grad = p * np.sqrt((xp / (x * a)) ** 2 + (yp / (y * b)) ** 2) + 1e-6
    return (1.0 - q) / grad, q


def _condyle_contours(u: np.ndarray, k: _Knee) -> list[np.ndarray]:
    """Lower outline v(u) of each femoral condyle (its level beside the condyle)."""
    out = []
    for (c, a, b), bottom in zip(k.condyles, (-k.jsw_lat / 2.0, -k.jsw_med / 2.0), strict=True):
        x = np.clip(np.abs(u - c) / a, 0.0, 1.0)
        out.append(bottom - b + b * (1.0 - x**k.squareness) ** (1.0 / k.squareness))
    return out


def _femur(u: np.ndarray, v: np.ndarray, k: _Knee, tex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Attenuation of the distal femur on the given rows, and its articular outline v_f(u)."""
    (cl, al, bl), (cm, am, bm) = k.condyles
    bottoms = (-k.jsw_lat / 2.0, -k.jsw_med / 2.0)
    wobble = _medial_wobble(u, k)
    vw = v - wobble if k.deformity > 0 else v  # an irregular bone end moves the outline with it
    dl, ql = _superellipse(u, vw, cl, bottoms[0] - bl, al, bl, k.squareness)
    dm, qm = _superellipse(u, vw, cm, bottoms[1] - bm, am, bm, k.squareness)
    # the metaphysis widens from the image top down to the condyles
    flare = _smoothstep((v + 160.0) / 125.0)
    half_l = k.femur_top[0] + (al - cl - k.femur_top[0]) * flare
    half_m = k.femur_top[1] + (cm + am - k.femur_top[1]) * flare
    # the shaft ends at the condyle centres, except between the condyles where it reaches down
    # to the joint, so that the notch below can be cut as one smooth arch
    nu, nw, nh = k.notch
    base = max(bottoms) + 3.0
    cap = np.where(u < 0, bottoms[0] - bl, bottoms[1] - bm)
    cap = (cap + (base - 3.0 - cap) * np.exp(-(((u - nu) / (nw + 10.0)) ** 4))).astype(np.float32)
    shaft = _ramp(half_l + u) * _ramp(half_m - u) * _ramp(cap - v)
    condyles = np.maximum(_ramp(dl), _ramp(dm))
    # the intercondylar notch: an arch cut between the condyles, open towards the tibia
    dn, _ = _ellipse(u, v, nu, base, nw, nh + 3.0)
    inside = np.maximum(shaft, condyles) * (1.0 - _ramp(dn, 1.5))

    lateral, medial = _condyle_contours(u, k)
    roof = base - (nh + 3.0) * np.sqrt(np.clip(1.0 - ((u - nu) / nw) ** 2, 0.0, 1.0))
    contour = np.minimum(np.maximum(lateral, medial) + wobble, roof)

    center = (half_m - half_l) / 2.0
    half = (half_m + half_l) / 2.0
    x = (u - center) / half
    thick = _dome(x * x)
    shell = thick - np.sqrt(np.maximum(0.9**2 - x * x, 0.0))
    lobes = _dome(ql) + _dome(qm)
    below_cap = _ramp(v - cap, 6.0)
    rim = below_cap * np.exp(-np.maximum(np.maximum(dl, dm), 0.0) / 1.6)
    rim = np.maximum(rim, np.exp(-np.maximum(-dn, 0.0) / 1.6))  # the notch roof has its own cortex
    depth = np.maximum(contour - v, 0.0)
    att = inside * (
        0.34 * thick * (1.0 + k.texture[0] * tex)
        + 0.3 * shell * (1.0 - below_cap)
        + 0.12 * lobes
        + 0.2 * rim
        + _sclerosis_band(depth, u, k)
    )
    return att.astype(np.float32), contour


def _sclerosis_band(depth: np.ndarray, u: np.ndarray, k: _Knee) -> np.ndarray:
    """Extra density of the subchondral bone near the joint line, heavier medially."""
    if k.sclerosis <= 0:
        return np.zeros((1, 1), dtype=np.float32)
    medial = 0.3 + 0.7 / (1.0 + np.exp(-u / 12.0))
    return k.sclerosis * medial * np.exp(-depth / 9.0)


def _tibia(u: np.ndarray, v: np.ndarray, k: _Knee, tex: np.ndarray, femur_contour: np.ndarray) -> np.ndarray:
    """Attenuation of the proximal tibia on the given rows."""
    lateral, medial = _condyle_contours(u, k)
    top_l, top_m = k.jsw_lat / 2.0, k.jsw_med / 2.0
    # each plateau follows its condyle's curve a little (the medial one is concave)
    rise_l = np.clip(-top_l - lateral, 0.0, 10.0) * k.congruence[0]
    rise_m = np.clip(-top_m - medial, 0.0, 10.0) * k.congruence[1]
    blend = _smoothstep((u + 14.0) / 28.0)
    level = (top_l - rise_l) * (1.0 - blend) + (top_m - rise_m) * blend
    nu = k.notch[0]
    level = level - k.spines[0] * np.exp(-(((u - nu + 7.0) / 5.5) ** 2))
    level = level - k.spines[1] * np.exp(-(((u - nu - 7.0) / 5.5) ** 2))
    # rounded plateau corners
    w_l, w_m = k.plateau
    corner = np.where(u < 0, np.clip(-u - (w_l - 8.0), 0, None), np.clip(u - (w_m - 8.0), 0, None))
    level = level + corner * corner / 8.0
    own = _wobble(u, k, 0.8 * k.deformity, phase=1.7) * _smoothstep((u + 30.0) / 20.0)
    level = level + _medial_wobble(u, k) + own
    # keep a sliver of joint space even at grade 4 where the outlines wobble into each other
    level = np.maximum(level, femur_contour + np.where(np.abs(u - nu) < 22, -1e4, 0.8)).astype(np.float32)

    narrow = _smoothstep((v - 6.0) / 80.0)
    half_l = w_l + (k.tibia_bottom - w_l) * narrow
    half_m = w_m + (k.tibia_bottom - w_m) * narrow
    depth = v - level
    inside = _ramp(depth) * _ramp(half_l + u) * _ramp(half_m - u)

    center = (half_m - half_l) / 2.0
    half = (half_m + half_l) / 2.0
    x = (u - center) / half
    thick = _dome(x * x)
    canal = 0.92 - 0.25 * _smoothstep((v - 50.0) / 70.0)
    shell = thick - np.sqrt(np.maximum(canal * canal - x * x, 0.0))
    d = np.maximum(depth, 0.0)
    plate = np.exp(-d / 1.6) + 0.45 * np.exp(-(((d - 6.5) / 1.6) ** 2))  # front and back plateau rims
    att = inside * (0.36 * thick * (1.0 + k.texture[0] * tex) + 0.3 * shell + 0.2 * plate + _sclerosis_band(d, u, k))
    return att.astype(np.float32)


def _fibula(u: np.ndarray, v: np.ndarray, k: _Knee, tex: np.ndarray) -> np.ndarray:
    """The fibular head and neck, on the lateral side below the plateau, partly behind the tibia."""
    gap, radius = k.fibula
    head_v = k.jsw_lat / 2.0 + gap + 1.25 * radius
    narrow = float(_smoothstep(np.float64((head_v - 6.0) / 80.0)))
    tibia_edge = k.plateau[0] + (k.tibia_bottom - k.plateau[0]) * narrow
    head_u = -(tibia_edge + 0.05 * radius)
    d, q = _ellipse(u, v, head_u, head_v, radius, radius * 1.2)
    head = _ramp(d) * (0.16 + 0.16 * _dome(q) + 0.14 * np.exp(-np.maximum(d, 0.0) / 1.8))
    axis = head_u - 0.1 * radius + 0.12 * (v - head_v)
    neck_half = radius * (0.75 - 0.25 * _smoothstep((v - head_v) / 60.0))
    dx = neck_half - np.abs(u - axis)
    neck = _ramp(dx) * _ramp(v - head_v) * (0.2 + 0.1 * np.exp(-np.maximum(dx, 0.0) / 1.8))
    return (np.maximum(head, neck) * (1.0 + 0.6 * k.texture[0] * tex)).astype(np.float32)


def _osteophytes(u: np.ndarray, v: np.ndarray, k: _Knee, tex: np.ndarray) -> np.ndarray:
    """Bony spurs at the four joint margins: lips of bone growing outward, towards the joint line."""
    out = np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=np.float32)
    (cl, al, bl), (cm, am, bm) = k.condyles
    # where a condyle's outline has turned a quarter of the way from its side to its bottom
    rise = 1.0 - (1.0 - 0.92**k.squareness) ** (1.0 / k.squareness)
    anchors = (
        # (anchor u, anchor v, outward direction (du, dv))
        (cl - al * 0.92, -k.jsw_lat / 2.0 - bl * rise, (-1.0, 0.7)),
        (cm + am * 0.92, -k.jsw_med / 2.0 - bm * rise, (1.0, 0.7)),
        (-(k.plateau[0] - 3.0), k.jsw_lat / 2.0 + 2.0, (-1.0, -0.45)),
        (k.plateau[1] - 3.0, k.jsw_med / 2.0 + 2.0, (1.0, -0.45)),
    )
    for size, (au, av, (du, dv)) in zip(k.osteophytes, anchors, strict=True):
        if size < 1.2:  # below a pixel or so nobody could see it
            continue
        norm = math.hypot(du, dv)
        du, dv = du / norm, dv / norm
        nu, nv = -dv, du
        half_base = 0.5 * size + 2.0
        base = (au - 4.0 * du, av - 4.0 * dv)  # rooted inside the bone
        tip = (au + size * du, av + size * dv)
        p1 = (base[0] + half_base * nu, base[1] + half_base * nv)
        p2 = (base[0] - half_base * nu, base[1] - half_base * nv)
        # a small spur is also thin front to back, so it shows fainter than a large one
        out = np.maximum(out, _triangle(u, v, (p1, p2, tip)) * min(1.0, 0.3 + size / 8.0))
    return out * (0.3 + 0.1 * tex)


def _triangle(u: np.ndarray, v: np.ndarray, points) -> np.ndarray:
    """Soft inside-ness of a triangle (any winding), evaluated on its bounding window only."""
    us = [p[0] for p in points]
    vs = [p[1] for p in points]
    cols = np.flatnonzero((u[0] >= min(us) - 2) & (u[0] <= max(us) + 2))
    rows = np.flatnonzero((v[:, 0] >= min(vs) - 2) & (v[:, 0] <= max(vs) + 2))
    out = np.zeros((v.shape[0], u.shape[1]), dtype=np.float32)
    if not len(cols) or not len(rows):
        return out
    cs, rs = slice(cols[0], cols[-1] + 1), slice(rows[0], rows[-1] + 1)
    uu, vv = u[:, cs], v[rs, :]
    (x0, y0), (x1, y1), (x2, y2) = points
    sign = 1.0 if (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0) > 0 else -1.0
    inside = None
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y1)), ((x1, y1), (x2, y2)), ((x2, y2), (x0, y0))):
        ex, ey = bx - ax, by - ay
        d = sign * (ex * (vv - ay) - ey * (uu - ax)) / (math.hypot(ex, ey) + 1e-9)
        inside = d if inside is None else np.minimum(inside, d)
    out[rs, cs] = _ramp(inside)
    return out


def _cysts(u: np.ndarray, v: np.ndarray, k: _Knee) -> np.ndarray:
    """Small rounded lucencies just under the joint surfaces (grade 3-4)."""
    out = np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=np.float32)
    for cu, cv, r in k.cysts:
        cv = cv - k.jsw_med / 2.0 if cv < 0 else cv + k.jsw_med / 2.0
        d, q = _ellipse(u, v, cu, cv, r, r * 0.8)
        out += _ramp(d) * 0.12 * _dome(q)
    return out


def _knee_attenuation(k: _Knee, rng: np.random.Generator) -> np.ndarray:
    """Summed attenuation of soft tissue and bones on the canvas (X-ray paths add up)."""
    u, v = _local_axes(k)
    tex = _texture(rng, k)
    width = k.tissue_width - 0.06 * v  # the thigh is wider than the calf
    att = k.tissue * _dome((u / width) ** 2)
    att = np.broadcast_to(att, (_CANVAS, _CANVAS)).astype(np.float32)

    femur_rows = np.flatnonzero(v[:, 0] < max(k.jsw_lat, k.jsw_med) / 2.0 + 10.0)
    fr = slice(femur_rows[0], femur_rows[-1] + 1)
    femur, contour = _femur(u, v[fr], k, tex[fr])
    att[fr] += femur
    tibia_rows = np.flatnonzero(v[:, 0] > -max(k.spines) - 8.0)
    tr = slice(tibia_rows[0], tibia_rows[-1] + 1)
    att[tr] += _tibia(u, v[tr], k, tex[tr], contour)
    fibula_rows = np.flatnonzero(v[:, 0] > k.jsw_lat / 2.0 + k.fibula[0] - 2.0)
    if len(fibula_rows):
        br = slice(fibula_rows[0], None)
        att[br] += _fibula(u, v[br], k, tex[br])
    pu, pv, pr, pd = k.patella
    patella_rows = np.flatnonzero(v[:, 0] < pv + pr * 1.15 + 2.0)
    if len(patella_rows):
        pr_ = slice(0, patella_rows[-1] + 1)
        d, q = _ellipse(u, v[pr_], pu, pv, pr, pr * 1.15)
        att[pr_] += _ramp(d, 2.0) * pd * (_dome(q) + 0.6 * np.exp(-np.maximum(d, 0.0) / 2.0))
    att += _osteophytes(u, v, k, tex)
    if k.cysts:
        att -= _cysts(u, v, k)
    return att


def _to_image(att: np.ndarray, k: _Knee, rng: np.random.Generator, exposure: tuple[float, float, float]) -> np.ndarray:
    """Rotation into the 224 frame, film response, exposure, quantum noise; values in [0, 1]."""
    # rotate about the image centre and crop the margin (Pillow's affine warp is twice as fast
    # as scipy's); output pixel (x, y) samples the canvas at (a x + b y + c, d x + e y + f)
    cos, sin = math.cos(math.radians(k.angle)), math.sin(math.radians(k.angle))
    center = IMAGE_SIZE / 2.0
    warp = (
        cos,
        -sin,
        center + _MARGIN - cos * center + sin * center,
        sin,
        cos,
        center + _MARGIN - sin * center - cos * center,
    )
    canvas = Image.fromarray(np.ascontiguousarray(att, dtype=np.float32))
    att = np.array(
        canvas.transform((IMAGE_SIZE, IMAGE_SIZE), Image.Transform.AFFINE, warp, resample=Image.Resampling.BILINEAR)
    )
    gain, offset, gamma = exposure
    intensity = (1.0 - np.exp(-1.5 * att)) * (1.0 / (1.0 - math.exp(-1.5 * 1.3)))
    ramp = np.linspace(-1.0, 1.0, IMAGE_SIZE, dtype=np.float32)
    # Exposure is never flat: the heel effect along the tube axis, plus positioning and
    # soft-tissue differences that tilt the field per knee (both knees of one film differ too).
    tilt_y, tilt_x = rng.normal(0.0, 0.07, 2)
    field = 1.0 + (k.heel + tilt_y) * ramp[:, None] + tilt_x * ramp[None, :]
    image = offset + (gain * field) * np.maximum(intensity, 0.0) ** gamma
    # quantum noise, triangular (two uniforms): as good as normal at this level, and cheaper
    noise = rng.random((2, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    image += (noise[0] - noise[1]) * (k.noise * math.sqrt(6.0))
    return np.minimum(np.maximum(image, 0.0, out=image), 1.0, out=image)


def _knee_streams(seed: int, index: int, participant: str | int) -> tuple[np.random.Generator, np.random.Generator]:
    """The knee's own random stream and the one its participant's two knees share."""
    return (
        np.random.default_rng([seed, _KNEE, index, 0]),
        np.random.default_rng([seed, _PARTICIPANT, int(participant), 0]),
    )


def render_knee(
    grade: int,
    *,
    seed: int = 0,
    index: int = 0,
    side: str = "R",
    participant: str | int = 9000000,
    lean: int = 0,
) -> np.ndarray:
    """Draw one synthetic PA knee radiograph.

    Parameters
    ----------
    grade : int
        The KL grade (0-4) the knee shows.
    seed, index : int
        Select the random stream: the same values give the same knee.
    side : {"R", "L"}
        Left knees are the mirror image of right ones (the fibula is lateral).
    participant : str or int
        Both knees of one participant share body size, soft tissue and exposure.
    lean : {0, -1, 1}
        The knee's severity lies on the side of the grade below (-1) or above (+1),
        like the knees readers file under an adjacent grade.

    Returns
    -------
    ndarray
        224x224 float32 in [0, 1], bone bright.
    """
    if grade not in GRADES:
        raise ValueError(f"grade must be one of {GRADES}, not {grade!r}")
    if side not in ("L", "R"):
        raise ValueError(f"side must be 'L' or 'R', not {side!r}")
    if lean not in (-1, 0, 1):
        raise ValueError(f"lean must be -1, 0 or 1, not {lean!r}")
    rng, prng = _knee_streams(seed, index, participant)
    k = _draw_knee(grade, side, rng, prng, lean)
    att = _knee_attenuation(k, rng)
    return _to_image(att, k, rng, k.exposure)


#: Columns of :func:`knee_truth`: the grade signs each knee was drawn with.
KNEE_TRUTH_COLUMNS: tuple[str, ...] = (
    "relpath",
    "grade",
    "severity",
    "jsw_medial",
    "jsw_lateral",
    "osteophyte_femur_lateral",
    "osteophyte_femur_medial",
    "osteophyte_tibia_lateral",
    "osteophyte_tibia_medial",
    "sclerosis",
    "deformity",
    "cysts",
)


def knee_truth(plan: DemoPlan) -> pd.DataFrame:
    """The grade signs every knee file of a demo plan was drawn with (px at the 224 scale).

    The demo knows what its pixels show: measured features (joint-space width,
    spurs) can be checked against these values, and a probe fitted on them instead
    of on measurements shows how well the grades can be read at all (the demo
    overlaps adjacent grades on purpose). Files that show no knee are left out.

    Returns
    -------
    DataFrame
        :data:`KNEE_TRUTH_COLUMNS`, one row per knee file, in plan order.
    """
    import pandas as pd  # here: writing the demo needs no pandas

    rows = []
    for slot in plan.slots:
        key = slot.knee
        if key is None or slot.true_label is None:
            continue
        k = _draw_knee(key.grade, key.side, *_knee_streams(plan.seed, key.index, key.participant), key.lean)
        rows.append((slot.relpath, key.grade, k.severity, k.jsw_med, k.jsw_lat, *k.osteophytes, k.sclerosis, k.deformity, len(k.cysts)))
    return pd.DataFrame.from_records(rows, columns=list(KNEE_TRUTH_COLUMNS))


def _knee_u8(seed: int, key: KneeKey) -> np.ndarray:
    return to_uint8(
        render_knee(key.grade, seed=seed, index=key.index, side=key.side, participant=key.participant, lean=key.lean)
    )


# --------------------------------------------------------------------------- other body parts


def _capsule(x: np.ndarray, y: np.ndarray, p: tuple[float, float], q: tuple[float, float], r: float) -> np.ndarray:
    """Signed distance (px, positive inside) to a capsule: a segment p-q thickened by r."""
    ex, ey = q[0] - p[0], q[1] - p[1]
    t = np.clip(((x - p[0]) * ex + (y - p[1]) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    return r - np.hypot(x - p[0] - t * ex, y - p[1] - t * ey)


def _jittered_grid(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Centred pixel coordinates, shifted and scaled per image: body size and position vary between people."""
    n = IMAGE_SIZE
    scale_x, scale_y = rng.uniform(0.85, 1.15, 2)
    x = ((np.arange(n, dtype=np.float32) - n / 2 + rng.uniform(-6, 6)) / scale_x)[None, :]
    y = ((np.arange(n, dtype=np.float32) - n / 2 + rng.uniform(-6, 6)) / scale_y)[:, None]
    return x, y


def _render_chest(rng: np.random.Generator) -> np.ndarray:
    """A PA chest radiograph: body, dark lungs, heart, spine, ribs and clavicles."""
    x, y = _jittered_grid(rng)
    d, q = _ellipse(x, y, 0.0, 20.0, 112.0, 150.0)
    att = 0.55 * _ramp(d, 3.0) * _dome(q) + 0.1 * _ramp(d, 3.0)
    for side in (-1.0, 1.0):
        d, _ = _ellipse(x, y, side * 46.0, -8.0, 35.0, 72.0)
        att = att - 0.4 * _ramp(d, 4.0)
        for rib in range(9):
            y0 = -78.0 + 16.0 * rib
            curve = y0 + 0.006 * (np.abs(x) - 10.0) ** 2
            band = _ramp(2.2 - np.abs(y - curve), 1.5) * _ramp(side * x - 8.0) * _ramp(95.0 - np.abs(x), 4.0)
            att = att + 0.13 * band
        att = att + 0.22 * _ramp(_capsule(x, y, (side * 12.0, -84.0), (side * 80.0, -96.0), 4.0), 1.5)
    d, _ = _ellipse(x, y, 14.0, 36.0, 32.0, 27.0)
    att = att + 0.3 * _ramp(d, 3.0)
    spine = _ramp(9.0 - np.abs(x), 2.0) * (0.85 + 0.15 * np.cos(y * 2 * np.pi / 15.0))
    att = att + 0.32 * spine
    image = 0.05 + 0.9 * (1.0 - np.exp(-1.8 * np.clip(att, 0.0, None)))
    return np.clip(image + _film_grain(rng, image.shape), 0.0, 1.0).astype(np.float32)


def _film_grain(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Fine texture and quantum noise of one exposure: two radiographs of one template never share it."""
    grain = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), 0.8)
    return 0.03 * grain / grain.std() + rng.normal(0.0, 0.012, shape)


def _render_hand(rng: np.random.Generator) -> np.ndarray:
    """A PA hand radiograph: soft tissue, metacarpals and phalanges fanning out, carpals, forearm."""
    x, y = _jittered_grid(rng)
    tissue = _ramp(_ellipse(x, y, 0.0, 35.0, 52.0, 48.0)[0], 3.0)
    tissue = np.maximum(tissue, _ramp(_capsule(x, y, (0.0, 60.0), (0.0, 130.0), 34.0), 3.0))
    bone = np.zeros_like(tissue)
    fingers = ((-62.0, -0.9, 3), (-28.0, -0.25, 4), (-8.0, -0.05, 4), (12.0, 0.12, 4), (32.0, 0.3, 4))
    for base_x, angle, segments in fingers:
        base = (base_x * 0.6, 62.0 if segments == 4 else 50.0)
        lengths = (38.0, 26.0, 17.0, 12.0) if segments == 4 else (30.0, 22.0, 15.0)
        direction = (math.sin(angle), -math.cos(angle))
        start = base
        end = start
        for j, length in enumerate(lengths):
            end = (start[0] + direction[0] * length, start[1] + direction[1] * length)
            radius = 4.5 - 0.6 * j
            bone = np.maximum(bone, _ramp(_capsule(x, y, start, end, radius), 1.2))
            start = (end[0] + direction[0] * 3.0, end[1] + direction[1] * 3.0)
        tissue = np.maximum(tissue, _ramp(_capsule(x, y, base, end, 9.5), 2.0))
    for cx, cy in ((-16, 74), (-4, 72), (8, 73), (20, 76), (-12, 84), (2, 84), (14, 86)):
        bone = np.maximum(bone, _ramp(_ellipse(x, y, float(cx), float(cy), 6.0, 5.0)[0], 1.2))
    for cx in (-14.0, 14.0):
        bone = np.maximum(bone, _ramp(_capsule(x, y, (cx, 96.0), (cx * 1.1, 140.0), 7.0), 1.2))
    att = 0.3 * tissue + 0.5 * bone
    image = 0.04 + 0.9 * (1.0 - np.exp(-2.0 * att))
    return np.clip(image + _film_grain(rng, image.shape), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- encoding


def _png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a 2-D uint8 (8-bit) or uint16 (16-bit) array; no metadata, so deterministic."""
    buffer = io.BytesIO()
    # zlib level 1: a third faster than the default on noisy radiographs, files 10% bigger
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _near_duplicate(u8: np.ndarray, options: Mapping[str, Any]) -> bytes:
    kind = options["kind"]
    if kind == "jpeg_reencoded":
        buffer = io.BytesIO()
        Image.fromarray(u8).save(buffer, format="JPEG", quality=options["quality"])
        with Image.open(io.BytesIO(buffer.getvalue())) as img:
            return _png(np.asarray(img.convert("L")))
    if kind == "resized":
        size = options["size"]
        return _png(np.asarray(Image.fromarray(u8).resize((size, size), Image.Resampling.BILINEAR)))
    if kind == "shifted":
        dx, dy = options["dx"], options["dy"]
        pad = max(abs(dx), abs(dy))
        padded = np.pad(u8, pad, mode="edge")
        rows = slice(pad - dy, pad - dy + u8.shape[0])
        cols = slice(pad - dx, pad - dx + u8.shape[1])
        return _png(padded[rows, cols])
    if kind == "brightened":
        return _png(np.clip(np.rint(u8 * options["factor"]), 0, 255).astype(np.uint8))
    if kind == "converted_16bit":
        return _png(u8.astype(np.uint16) * 257)
    raise ValueError(f"unknown near-duplicate kind {kind!r}")


def _overexpose(pixels: np.ndarray, target: float) -> np.ndarray:
    """Add the offset (found by bisection) that lifts the mean, with clipping, to ``target``."""
    stretched = pixels * 1.5
    low, high = -1.0, 1.0
    for _ in range(30):
        mid = (low + high) / 2.0
        if float(np.clip(stretched + mid, 0.0, 1.0).mean()) < target:
            low = mid
        else:
            high = mid
    return np.clip(stretched + high, 0.0, 1.0)


_UID_NAMESPACE = uuid.UUID("6f1c5b8e-2d1a-5c4e-9a57-0c7a3d2e9b41")  # curate demo


def _uid(seed: int, *parts: str) -> str:
    """A deterministic DICOM UID: ``2.25.`` and a name-based UUID of the seed and ``parts`` (PS3.5 B.2).

    Not pydicom's ``generate_uid(prefix=None, entropy_srcs=...)``: with ``prefix=None`` it
    ignores the entropy and returns a random UUID.
    """
    name = "\x1f".join(("curate-demo", str(seed), *parts))
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def _dicom(u8: np.ndarray, slot: Slot, seed: int) -> bytes:
    """A Secondary Capture DICOM (explicit VR little endian) that decodes to ``u8 / 255`` exactly.

    Stored values are ``u8 * 16`` (12 bits) or ``u8 * 257`` (16 bits); the window is chosen so
    that the DICOM linear window maps them back onto [0, 1]. MONOCHROME1 stores the inverted
    values, which the decoder inverts back.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    options = slot.options
    bits = options["bits"]
    factor, center, width = (16, "2040.5", "4081") if bits == 12 else (257, "32768", "65536")
    values = u8.astype(np.uint16) * factor
    if options["photometric"] == "MONOCHROME1":
        values = 255 * factor - values
    sop_uid = _uid(seed, "image", slot.relpath)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(seed, "study", slot.participant)
    ds.SeriesInstanceUID = _uid(seed, "series", slot.participant, slot.side)
    ds.PatientID = slot.participant
    ds.PatientName = f"DEMO^{slot.participant}"
    ds.StudyID = "1"
    ds.StudyDescription = "curate demo: synthetic knee radiograph"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = options["modality"]
    ds.ConversionType = "WSD"
    ds.BodyPartExamined = "KNEE"
    ds.ViewPosition = "PA"
    ds.ImageLaterality = options["laterality"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = options["photometric"]
    ds.Rows, ds.Columns = u8.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = center
    ds.WindowWidth = width
    ds.PixelData = values.astype("<u2").tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


_HTML = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><h1>502 Bad Gateway</h1>
<p>The image server did not answer while fetching {name}.</p>
<hr><address>nginx</address></body></html>
"""


def render_slot(seed: int, slot: Slot) -> bytes:
    """The bytes of one demo file, faults included; the same for the same seed and slot."""
    fault, options = slot.fault, slot.options
    if fault == "zero_bytes":
        return b""
    if fault == "not_an_image":
        return _HTML.format(name=Path(slot.relpath).name).encode("ascii")
    rng = np.random.default_rng([seed, _FAULT, slot.index, 0])
    if fault == "blank":
        level = options["level"]
        pixels = np.full((IMAGE_SIZE, IMAGE_SIZE), level, dtype=np.float32)
        if level > 0:
            pixels += rng.normal(0.0, 0.003, pixels.shape).astype(np.float32)
        return _png(to_uint8(pixels))
    if fault == "wrong_body_part":
        other = np.random.default_rng([seed, _OTHER, slot.index, 0])
        render = _render_chest if options["part"] == "chest" else _render_hand
        return _png(to_uint8(render(other)))

    assert slot.knee is not None
    u8 = _knee_u8(seed, slot.knee)
    if fault == "near_duplicate":
        return _near_duplicate(u8, options)
    if fault in ("dicom_copy", "wrong_modality"):
        return _dicom(u8, slot, seed)
    if fault == "bits16":
        if options["full_range"]:
            return _png(u8.astype(np.uint16) * 257)
        return _png(np.rint(u8.astype(np.float64) * (4095 / 255)).astype(np.uint16))
    if fault == "truncated":
        data = _png(u8)
        return data[: len(data) // 2]
    if fault in ("dark", "overexposed", "blurred"):
        pixels = u8.astype(np.float32) / 255.0
        if fault == "dark":
            pixels = pixels * (options["mean"] / max(float(pixels.mean()), 1e-6))
        elif fault == "overexposed":
            pixels = _overexpose(pixels, options["mean"])
        else:
            pixels = ndimage.gaussian_filter(pixels, options["sigma"])
        return _png(to_uint8(pixels))
    # clean slots, exact duplicates (the source's bytes exactly) and label flips
    return _png(u8)


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`make_demo` wrote."""

    out_dir: Path
    seed: int
    scale: float
    counts: dict[str, tuple[int, ...]]
    total: int
    fault_counts: dict[str, int]
    seconds: float

    def __str__(self) -> str:
        header = "split  " + "".join(f"{'KL' + str(g):>7}" for g in GRADES) + f"{'total':>8}"
        lines = [
            f"Wrote {self.total:,} files to {self.out_dir} (seed {self.seed}, scale {self.scale:g}) "
            f"in {self.seconds:.1f} s",
            header,
        ]
        for split, row in self.counts.items():
            lines.append(f"{split:<7}" + "".join(f"{n:>7,}" for n in row) + f"{sum(row):>8,}")
        faults = ", ".join(f"{name} {n}" for name, n in self.fault_counts.items())
        lines.append(f"Injected faults (see faults.csv): {faults}")
        return "\n".join(lines)


def make_demo(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    scale: float = 1.0,
    progress: Callable[[int], object] | None = None,
    overwrite: bool = False,
    workers: int = 2,
) -> DemoSummary:
    """Write a synthetic knee-radiograph dataset with known faults to ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Created with ``{train,val,test}/{0..4}/<participant><L|R>.png``, ``faults.csv`` and
        ``demo.json``. It is written into a temporary folder beside it and renamed at the end,
        so a failure leaves nothing behind.
    seed : int
        Same seed and scale give byte-identical files.
    scale : float
        Multiplies the class counts (see :func:`scaled_counts`); 1.0 gives 8,260 images.
    progress : callable, optional
        Called as ``progress(n)`` each time ``n`` more files are written; the advances add
        up to ``plan_demo(seed, scale).total``.
    overwrite : bool
        Replace an existing non-empty ``out_dir`` (only once the new one is complete).
    workers : int
        Worker processes; 1 draws in this process. The output does not depend on it.

    Returns
    -------
    DemoSummary

    Raises
    ------
    CurateError
        If ``out_dir`` exists and is not empty (without ``overwrite``), or is a file, or for a
        bad seed or scale.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CurateError(f"cannot write the demo to {out}: it is a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise CurateError(f"cannot write the demo to {out}: the folder exists and is not empty")
    plan = plan_demo(seed, scale)
    old: Path | None = None
    try:
        with atomic_directory(out) as tmp:
            _make_folders(tmp, plan)
            _write_slots(tmp, plan, progress, workers)
            _write_tables(tmp, plan)
            if out.is_dir() and any(out.iterdir()):
                # Move the old folder aside only now that the new one is complete.
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
                os.replace(out, old / out.name)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old / out.name, out)  # the rename failed: put the old folder back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return DemoSummary(
        out_dir=out,
        seed=plan.seed,
        scale=plan.scale,
        counts=plan.counts,
        total=plan.total,
        fault_counts=plan.fault_counts(),
        seconds=time.perf_counter() - started,
    )


def _make_folders(root: Path, plan: DemoPlan) -> None:
    for split in SPLITS:
        for grade in GRADES:
            (root / split / str(grade)).mkdir(parents=True)
    # mkdtemp makes the root owner-only; give it the mode the user's umask gives new folders.
    os.chmod(root, stat.S_IMODE((root / SPLITS[0]).stat().st_mode))


def _write_chunk(seed: int, root: str, slots: list[Slot]) -> int:
    for slot in slots:
        (Path(root) / slot.relpath).write_bytes(render_slot(seed, slot))
    return len(slots)


def _chunks(slots: tuple[Slot, ...], workers: int) -> list[list[Slot]]:
    # Small enough for a smooth progress bar and even load, big enough to hide task overhead.
    size = int(np.clip(len(slots) // (workers * 24), 8, 64))
    return [list(slots[i : i + size]) for i in range(0, len(slots), size)]


def _pool_context():
    """fork is fastest, but forking a threaded parent (e.g. a progress-bar thread) can deadlock."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _write_slots(root: Path, plan: DemoPlan, progress: Callable[[int], object] | None, workers: int) -> None:
    if workers <= 1:
        for slot in plan.slots:
            _write_chunk(plan.seed, str(root), [slot])
            if progress is not None:
                progress(1)
        return
    chunks = _chunks(plan.slots, workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        pending = {pool.submit(_write_chunk, plan.seed, str(root), chunk) for chunk in chunks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    written = future.result()
                    if progress is not None:
                        progress(written)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _write_tables(root: Path, plan: DemoPlan) -> None:
    with open(root / "faults.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(FAULTS_CSV_COLUMNS)
        writer.writerows(plan.fault_rows())
    version = getattr(sys.modules.get("curate"), "__version__", None)
    info = {
        "generator": "curate.demo",
        "curate_version": version,
        "seed": plan.seed,
        "scale": plan.scale,
        "image_size": IMAGE_SIZE,
        "total": plan.total,
        "counts": {split: {str(g): n for g, n in zip(GRADES, row, strict=True)} for split, row in plan.counts.items()},
        "faults": plan.fault_counts(),
    }
    (root / "demo.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

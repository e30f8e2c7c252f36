"""Small tables for the select tests: random catalogs, and demo-like tables built from a demo plan.

A demo plan (:func:`curate.demo.plan_demo`) decides every file, grade, participant and
injected fault of the demo without drawing an image, so the catalog the ``oai-kl``
loader would read, the quality flags a scan would raise for the injected faults, and
the findings a label stage would report can be built from it in milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from curate.catalog import make_sample_id
from curate.demo import plan_demo

# injected fault -> the quality flag a scan raises for it
FAULT_FLAGS = {
    "truncated": "unreadable",
    "zero_bytes": "unreadable",
    "not_an_image": "unreadable",
    "exact_duplicate": "exact_duplicate",
    "near_duplicate": "near_duplicate",
    "blank": "blank",
    "wrong_modality": "wrong_modality",
    "wrong_body_part": "wrong_body_part",
    "dark": "dark",
    "overexposed": "overexposed",
    "blurred": "blurred",
}
FLAGS = sorted(set(FAULT_FLAGS.values()) | {"monochrome1"})


def demo_like(seed: int = 0, scale: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(catalog, quality, labels) of the demo at ``seed`` and ``scale``, without its images."""
    plan = plan_demo(seed, scale)
    rng = np.random.default_rng(seed)
    catalog, quality, labels = [], [], []
    for slot in plan.slots:
        sample_id = make_sample_id("oai-kl", slot.relpath)
        catalog.append(
            {
                "sample_id": sample_id,
                "path": slot.relpath,
                "label": slot.label,
                "patient_id": slot.participant,
                "source": "oai-kl",
                "side": slot.side,
                "official_split": slot.split,
            }
        )
        flags = {f"flag_{name}": False for name in FLAGS}
        if slot.fault in FAULT_FLAGS:
            flags[f"flag_{FAULT_FLAGS[slot.fault]}"] = True
        readable = not flags["flag_unreadable"]
        quality.append({"sample_id": sample_id, "path": slot.relpath, "readable": readable, **flags})
        true = slot.true_label
        flipped = slot.fault in ("label_flip_adjacent", "label_flip_distant") and true is not None
        labels.append(
            {
                "sample_id": sample_id,
                "given_label": slot.label,
                "suggested_label": true if flipped else slot.label,
                "label_quality": float(rng.uniform(0.0, 0.2) if flipped else rng.uniform(0.4, 1.0)),
                "is_label_issue": flipped,
                "grade_distance": abs(slot.label - true) if flipped else 0,
            }
        )
    labels = pd.DataFrame(labels)
    labels["grade_distance"] = labels["grade_distance"].astype("Int64")
    return pd.DataFrame(catalog), pd.DataFrame(quality), labels


def random_catalog(
    rng: np.random.Generator,
    *,
    patients: int = 60,
    class_weights: tuple[float, ...] = (0.4, 0.25, 0.2, 0.1, 0.05),
    max_per_patient: int = 4,
    official: bool = False,
) -> pd.DataFrame:
    """A catalog of ``patients`` patients with 1 to ``max_per_patient`` samples each."""
    p = np.asarray(class_weights, dtype=float) / sum(class_weights)
    rows = []
    for i in range(patients):
        split = rng.choice(["train", "val", "test"], p=[0.7, 0.1, 0.2])
        for j in range(int(rng.integers(1, max_per_patient + 1))):
            rows.append(
                {
                    "sample_id": f"s{i:04d}_{j}",
                    "path": f"img/{i}_{j}.png",
                    "label": int(rng.choice(len(p), p=p)),
                    "patient_id": f"p{i:04d}",
                    "source": "t",
                    **({"official_split": split} if official else {}),
                }
            )
    return pd.DataFrame(rows)


def features_for(catalog: pd.DataFrame, *, dims: int = 8, seed: int = 0) -> pd.DataFrame:
    """Random numeric features indexed by sample_id."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.normal(size=(len(catalog), dims)), index=pd.Index(catalog["sample_id"], name="sample_id")
    ).add_prefix("f")


def clustered_features(catalog: pd.DataFrame, *, dims: int = 6, blobs: int = 8, seed: int = 0) -> pd.DataFrame:
    """Features where each class is a few blobs of very unequal size (a common look and rarer ones),
    the structure where a random subset repeats the common look and misses the rare ones."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(catalog), dims))
    sizes = 1.0 / np.arange(1, blobs + 1) ** 1.5
    for label in pd.unique(catalog["label"]):
        members = np.flatnonzero((catalog["label"] == label).to_numpy())
        centers = rng.normal(scale=4.0, size=(blobs, dims))
        blob = rng.choice(blobs, size=len(members), p=sizes / sizes.sum())
        out[members] = centers[blob] + rng.normal(scale=0.5, size=(len(members), dims))
    return pd.DataFrame(out, index=pd.Index(catalog["sample_id"], name="sample_id")).add_prefix("f")


def catalog_of(patients: dict[str, list[int]]) -> pd.DataFrame:
    """A catalog from each patient's labels, one sample per label: ``{"a": [0, 1], "b": [1]}``."""
    rows = [
        {"sample_id": f"{patient}_{j}", "path": f"img/{patient}_{j}.png", "label": label, "patient_id": patient,
         "source": "t"}
        for patient, labels in patients.items()
        for j, label in enumerate(labels)
    ]
    return pd.DataFrame(rows)


#: Patients a, b and c hold classes 0+1, 1+2 and 0+2: two of those classes fit in both of two splits,
#: never all three (a class held by two patients puts them apart, and three can't be pairwise apart).
TANGLE = {"a": [0, 1], "b": [1, 2], "c": [0, 2], **{f"q{i}": [3] for i in range(8)}}

"""The synthetic demo dataset: layout, determinism, injected faults, and a real grade signal."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from curate.demo import (
    DEFAULT_COUNTS,
    FAULT_TYPES,
    FAULTS_CSV_COLUMNS,
    GRADES,
    KNEE_TRUTH_COLUMNS,
    NEAR_DUPLICATE_KINDS,
    SPLITS,
    knee_truth,
    make_demo,
    plan_demo,
    render_knee,
    render_slot,
    scaled_counts,
)
from curate.errors import CurateError
from curate.imaging import DecodeFailure, DecodeReason, read_dicom_header, read_image, try_read_image

SEED = 7
SCALE = 0.05  # 413 images: enough of every grade for the signal test, a few seconds to write
NAME = re.compile(r"^(9\d{6})([LR])\.(png|dcm)$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "kl"
    make_demo(out, seed=SEED, scale=SCALE)
    return out


@pytest.fixture(scope="module")
def plan():
    return plan_demo(SEED, SCALE)


@pytest.fixture(scope="module")
def faults(demo) -> list[dict[str, str]]:
    with open(demo / "faults.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*/*") if p.is_file())


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def _by_fault(faults, fault: str) -> list[dict[str, str]]:
    rows = [row for row in faults if row["fault"] == fault]
    assert rows, f"no {fault} in faults.csv"
    return rows


def _folder_grade(relpath: str) -> int:
    return int(relpath.split("/")[1])


def _clean_pixels(plan, relpath: str) -> np.ndarray:
    """What the slot's image would have been as a clean 8-bit PNG, decoded."""
    slot = next(s for s in plan.slots if s.relpath == relpath)
    clean = dataclasses.replace(slot, fault=None, options={})
    return np.asarray(Image.open(_bytes_io(render_slot(SEED, clean))), dtype=np.float32) / 255.0


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


# --------------------------------------------------------------------------- layout and counts


def test_default_counts_are_the_published_table():
    assert DEFAULT_COUNTS == {
        "train": (2286, 1046, 1516, 757, 173),
        "val": (328, 153, 212, 106, 27),
        "test": (639, 296, 447, 223, 51),
    }
    assert plan_demo(0, 1.0).total == 8260
    assert scaled_counts(1.0) == DEFAULT_COUNTS


def test_scaled_counts_round_and_keep_at_least_one():
    assert scaled_counts(0.02) == {"train": (46, 21, 30, 15, 3), "val": (7, 3, 4, 2, 1), "test": (13, 6, 9, 4, 1)}
    assert all(n >= 1 for row in scaled_counts(0.001).values() for n in row)


def test_files_per_split_and_grade_are_exact(demo):
    counts = defaultdict(int)
    for path in _images(demo):
        split, grade = path.parent.parent.name, int(path.parent.name)
        counts[split, grade] += 1
        assert NAME.match(path.name), path
    expected = scaled_counts(SCALE)
    assert {key: n for key, n in counts.items()} == {
        (split, grade): expected[split][grade] for split in SPLITS for grade in GRADES
    }
    assert sorted(p.name for p in demo.iterdir()) == ["demo.json", "faults.csv", "test", "train", "val"]


def test_participants_keep_both_knees_in_one_split(demo):
    sides = defaultdict(list)
    splits = defaultdict(set)
    for path in _images(demo):
        pid, side, _ = NAME.match(path.name).groups()
        sides[pid].append(side)
        splits[pid].add(path.parent.parent.name)
    assert all(len(s) == 1 for s in splits.values())
    assert all(sorted(s) in (["L"], ["R"], ["L", "R"]) for s in sides.values())
    assert sum(len(s) == 2 for s in sides.values()) >= len(sides) - len(SPLITS)  # only odd splits leave one knee


def test_grades_of_a_participants_knees_correlate(plan):
    by_pid = defaultdict(list)
    for slot in plan.slots:
        by_pid[slot.participant].append(slot.label)
    pairs = np.array([g for g in by_pid.values() if len(g) == 2])
    r = np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]
    assert 0.3 < r < 0.98  # related, like real bilateral grades, but not copies


def test_images_are_224_grayscale_8bit_pngs(demo, faults):
    special = {row["file"] for row in faults}
    clean = [p for p in _images(demo) if p.relative_to(demo).as_posix() not in special]
    for path in clean[:: max(1, len(clean) // 40)]:
        with Image.open(path) as img:
            assert (img.format, img.mode, img.size) == ("PNG", "L", (224, 224))


def test_demo_json_records_seed_scale_and_counts(demo):
    info = json.loads((demo / "demo.json").read_text())
    assert (info["seed"], info["scale"], info["total"]) == (SEED, SCALE, sum(map(sum, scaled_counts(SCALE).values())))
    assert info["counts"]["val"] == {str(g): n for g, n in zip(GRADES, scaled_counts(SCALE)["val"], strict=True)}


# --------------------------------------------------------------------------- determinism and safety


def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path):
    make_demo(tmp_path / "a", seed=3, scale=0.02, workers=2)
    make_demo(tmp_path / "b", seed=3, scale=0.02, workers=1)
    make_demo(tmp_path / "c", seed=4, scale=0.02)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert a["faults.csv"] != c["faults.csv"]
    assert set(a) != set(c)  # other participants

    def clean_images(tree, root):
        with open(root / "faults.csv", newline="") as fh:
            listed = {row["file"] for row in csv.DictReader(fh)}
        return {digest for name, digest in tree.items() if name.endswith(".png") and name not in listed}

    assert not clean_images(a, tmp_path / "a") & clean_images(c, tmp_path / "c")


def test_progress_advances_add_up_to_the_plan_total(tmp_path):
    advances = []
    summary = make_demo(tmp_path / "out", seed=1, scale=0.02, progress=advances.append)
    assert sum(advances) == plan_demo(1, 0.02).total == summary.total
    assert "faults.csv" in str(summary) and "train" in str(summary)


def test_refuses_a_non_empty_folder_and_overwrites_only_when_asked(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CurateError, match=re.escape(str(out))) as info:
        make_demo(out, scale=0.02)
    assert "\n" not in str(info.value)
    assert (out / "keep.txt").read_text() == "mine"
    make_demo(out, scale=0.02, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "faults.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it


def test_an_empty_folder_is_used(tmp_path):
    (tmp_path / "out").mkdir()
    make_demo(tmp_path / "out", scale=0.02)
    assert (tmp_path / "out" / "demo.json").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_leaves_no_partial_output(tmp_path, workers):
    def interrupt(advance: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_demo(tmp_path / "out", scale=0.02, progress=interrupt, workers=workers)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused_in_one_line():
    for kwargs in ({"seed": -1}, {"seed": 1.5}, {"scale": 0}, {"scale": float("nan")}):
        with pytest.raises(CurateError):
            plan_demo(**kwargs)
    with pytest.raises(CurateError, match="scale too small"):
        plan_demo(0, 0.001)


# --------------------------------------------------------------------------- faults


def test_faults_csv_lists_every_fault_type_for_existing_files(demo, faults):
    with open(demo / "faults.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == FAULTS_CSV_COLUMNS
    assert {row["fault"] for row in faults} == set(FAULT_TYPES)
    assert [(r["file"], r["fault"]) for r in faults] == sorted((r["file"], r["fault"]) for r in faults)
    for row in faults:
        assert (demo / row["file"]).is_file(), row
    per_file = defaultdict(set)
    for row in faults:
        per_file[row["file"]].add(row["fault"])
    # one fault per file, except DICOM copies that also carry a laterality mismatch
    assert all(len(f) == 1 or f == {"dicom_copy", "dicom_laterality_mismatch"} for f in per_file.values())
    kinds = {row["details"].split(" of ")[0] for row in _by_fault(faults, "near_duplicate")}
    assert kinds == set(NEAR_DUPLICATE_KINDS)


def test_faults_are_spread_over_the_splits(faults):
    assert {row["file"].split("/")[0] for row in faults} == set(SPLITS)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("truncated", DecodeReason.TRUNCATED),
        ("zero_bytes", DecodeReason.ZERO_BYTES),
        ("not_an_image", DecodeReason.NOT_AN_IMAGE),
    ],
)
def test_broken_files_fail_with_the_right_reason(demo, faults, fault, reason):
    for row in _by_fault(faults, fault):
        result = try_read_image(demo / row["file"])
        assert isinstance(result, DecodeFailure) and result.reason is reason, (row, result)
        assert row["true_label"] == ""


def test_every_other_file_decodes(demo, faults):
    broken = {row["file"] for row in faults if row["fault"] in ("truncated", "zero_bytes", "not_an_image")}
    for path in _images(demo):
        if path.relative_to(demo).as_posix() not in broken:
            assert read_image(path).pixels.ndim == 2


def test_exposure_faults_have_the_stated_brightness(demo, faults):
    for row in _by_fault(faults, "dark"):
        assert 0.02 <= read_image(demo / row["file"]).pixels.mean() <= 0.08
    for row in _by_fault(faults, "overexposed"):
        pixels = read_image(demo / row["file"]).pixels
        assert pixels.mean() > 0.9 and (pixels >= 254 / 255).mean() > 0.5
    for row in _by_fault(faults, "blank"):
        assert read_image(demo / row["file"]).pixels.std() < 0.01


def _fine_detail(pixels: np.ndarray) -> float:
    """Energy of the 4-neighbour Laplacian: trabecular texture and sharp edges."""
    lap = 4 * pixels[1:-1, 1:-1] - pixels[:-2, 1:-1] - pixels[2:, 1:-1] - pixels[1:-1, :-2] - pixels[1:-1, 2:]
    return float(lap.var())


def test_blur_removes_the_fine_texture(demo, faults, plan):
    for row in _by_fault(faults, "blurred"):
        blurred = read_image(demo / row["file"]).pixels
        assert _fine_detail(blurred) < 0.05 * _fine_detail(_clean_pixels(plan, row["file"]))


def test_label_flips_have_the_stated_grade_distance(faults):
    for fault, ok in (("label_flip_adjacent", lambda d: d == 1), ("label_flip_distant", lambda d: d >= 2)):
        for row in _by_fault(faults, fault):
            assert ok(abs(int(row["true_label"]) - _folder_grade(row["file"]))), row


def test_true_labels_differ_from_folders_only_for_label_errors(faults):
    for row in faults:
        if row["true_label"] == "":
            continue
        conflict = row["fault"].startswith("label_flip") or "label conflict" in row["details"]
        assert (int(row["true_label"]) != _folder_grade(row["file"])) == conflict, row


def test_exact_duplicates_copy_a_clean_image_of_the_same_grade(demo, faults):
    listed = {row["file"] for row in faults}
    rows = _by_fault(faults, "exact_duplicate")
    for row in rows:
        source = row["details"].removeprefix("copy of ")
        assert source not in listed and _folder_grade(source) == _folder_grade(row["file"])
        assert (demo / source).read_bytes() == (demo / row["file"]).read_bytes()
    assert any(row["file"].split("/")[0] != row["details"].split(" ")[2].split("/")[0] for row in rows)


def _thumb(pixels: np.ndarray, size: int = 64) -> np.ndarray:
    img = Image.fromarray(np.clip(pixels * 255, 0, 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32).ravel()


def test_near_duplicates_match_their_source_better_than_other_knees(demo, faults):
    listed = {row["file"] for row in faults}
    clean = [p for p in _images(demo) if p.relative_to(demo).as_posix() not in listed]
    rows = _by_fault(faults, "near_duplicate")
    for row in rows:
        source = row["details"].split(" of ")[1].split(";")[0]
        assert source not in listed
        copy = _thumb(read_image(demo / row["file"]).pixels, 32)
        same = np.corrcoef(copy, _thumb(read_image(demo / source).pixels, 32))[0, 1]
        others = [
            np.corrcoef(copy, _thumb(read_image(p).pixels, 32))[0, 1]
            for p in clean[:: len(clean) // 20]
            if p != demo / source
        ]
        assert same > 0.9 and same > max(others), (row, same, max(others))
        assert int(row["true_label"]) == _folder_grade(source)
    assert any("label conflict" in row["details"] for row in rows)


def test_16bit_pngs_decode_to_the_8bit_image(demo, faults, plan):
    rows = _by_fault(faults, "bits16")
    for row in rows:
        decoded = read_image(demo / row["file"])
        assert decoded.facts.bits_stored == 16
        np.testing.assert_allclose(decoded.pixels, _clean_pixels(plan, row["file"]), atol=0.51 / 255)
    converted = [r for r in _by_fault(faults, "near_duplicate") if r["details"].startswith("converted_16bit")]
    for row in converted:
        source = row["details"].split(" of ")[1].split(";")[0]
        np.testing.assert_allclose(read_image(demo / row["file"]).pixels, read_image(demo / source).pixels, atol=1e-6)


def test_dicom_copies_decode_like_the_png_and_carry_their_header(demo, faults, plan):
    dicoms = _by_fault(faults, "dicom_copy") + _by_fault(faults, "wrong_modality")
    mismatched = {row["file"] for row in _by_fault(faults, "dicom_laterality_mismatch")}
    assert mismatched <= {row["file"] for row in dicoms}
    photometrics = set()
    for row in dicoms:
        path = demo / row["file"]
        assert path.suffix == ".dcm" and not path.with_suffix(".png").exists()
        decoded = read_image(path)
        photometrics.add(decoded.facts.photometric)
        np.testing.assert_allclose(decoded.pixels, _clean_pixels(plan, row["file"]), atol=1e-5)
        header = read_dicom_header(path)
        pid, side, _ = NAME.match(path.name).groups()
        assert header["dicom_patient_id"] == pid and header["body_part"] == "KNEE"
        assert (header["laterality"] != side) == (row["file"] in mismatched)
        if row["fault"] == "wrong_modality":
            assert header["modality"] in ("MR", "CT")
        else:
            assert header["modality"] in ("DX", "CR")
    assert photometrics == {"MONOCHROME1", "MONOCHROME2"}


def test_dicom_uids_are_deterministic_and_distinct(demo, faults):
    import pydicom

    uids = []
    for row in _by_fault(faults, "dicom_copy"):
        ds = pydicom.dcmread(demo / row["file"], stop_before_pixels=True)
        uids.append(ds.SOPInstanceUID)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert len(set(uids)) == len(uids)
    slot = next(s for s in plan_demo(SEED, SCALE).slots if s.fault == "dicom_copy")
    assert render_slot(SEED, slot) == (demo / slot.relpath).read_bytes()


def test_wrong_body_parts_are_not_knees(demo, faults):
    knee = _thumb(render_knee(0, seed=SEED), 32)
    for row in _by_fault(faults, "wrong_body_part"):
        pixels = read_image(demo / row["file"]).pixels
        assert pixels.shape == (224, 224) and row["true_label"] == ""
        assert np.corrcoef(_thumb(pixels, 32), knee)[0, 1] < 0.6


# --------------------------------------------------------------------------- the grade signal


def test_left_knees_mirror_right_ones():
    right = render_knee(2, seed=1, index=5, side="R")
    left = render_knee(2, seed=1, index=5, side="L")
    assert np.corrcoef(_thumb(right, 32), _thumb(left[:, ::-1], 32))[0, 1] > 0.9
    assert np.array_equal(right, render_knee(2, seed=1, index=5, side="R"))


def test_a_simple_classifier_separates_kl0_from_kl3_and_4(demo, faults):
    """Logistic regression on 24x24 thumbnails, patient-grouped cross-validation."""
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    listed = {row["file"] for row in faults}
    features, labels, groups = [], [], []
    for path in _images(demo):
        rel = path.relative_to(demo).as_posix()
        grade = _folder_grade(rel)
        if rel in listed or grade not in (0, 3, 4):
            continue
        pixels = read_image(path).pixels
        if path.stem.endswith("L"):
            pixels = pixels[:, ::-1]  # lateral on the same side for every knee
        thumb = _thumb(pixels, 24)
        features.append((thumb - thumb.mean()) / (thumb.std() + 1e-6))
        labels.append(int(grade >= 3))
        groups.append(path.stem[:-1])
    labels = np.array(labels)
    assert sklearn and labels.sum() >= 20 and (1 - labels).sum() >= 40
    model = LogisticRegression(C=0.05, max_iter=2000)
    cv = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0)
    predicted = cross_val_predict(model, np.array(features), labels, groups=groups, cv=cv)
    assert balanced_accuracy_score(labels, predicted) > 0.8  # chance is 0.5


def _joint_space_width(pixels: np.ndarray) -> int:
    """Width (rows) at half depth of the dark valley between femur and tibia, medial side of a right knee."""
    band = pixels[75:150, 140:190].mean(axis=1)  # medial compartment, rows around the joint line
    deepest = int(band.argmin())
    half = band[deepest] + 0.5 * (np.median(band) - band[deepest])
    top, bottom = deepest, deepest
    while top > 0 and band[top - 1] < half:
        top -= 1
    while bottom < len(band) - 1 and band[bottom + 1] < half:
        bottom += 1
    return bottom - top + 1


def test_joint_space_narrows_with_grade():
    widths = {
        grade: np.median([_joint_space_width(render_knee(grade, seed=11, index=i)) for i in range(15)])
        for grade in GRADES
    }
    assert widths[0] > widths[2] > widths[4]
    assert widths[0] - widths[4] >= 4


def test_knee_truth_lists_the_signs_each_knee_file_was_drawn_with(plan):
    truth = knee_truth(plan)
    assert tuple(truth.columns) == KNEE_TRUTH_COLUMNS
    shown = {slot.relpath: slot.true_label for slot in plan.slots if slot.knee is not None and slot.true_label is not None}
    assert dict(zip(truth["relpath"], truth["grade"])) == shown
    by_grade = truth.groupby("grade")
    assert by_grade["jsw_medial"].mean().is_monotonic_decreasing
    assert (truth.loc[truth["grade"] == 4, "deformity"] >= 0.5).all()


def test_adjacent_flips_lean_towards_the_grade_filed_and_distant_flips_do_not():
    default = plan_demo(0)  # the small test demo has too few flips
    truth = knee_truth(default).set_index("relpath")
    slots = {slot.relpath: slot for slot in default.slots}
    for fault, borderline in (("label_flip_adjacent", True), ("label_flip_distant", False)):
        rows = truth.loc[[path for path, slot in slots.items() if slot.fault == fault]]
        filed = np.array([slots[path].label for path in rows.index])
        # how far the knee's severity sits from its own grade, towards the grade it is filed under
        towards_filed = (rows["severity"] - rows["grade"]) * np.sign(filed - rows["grade"])
        assert len(rows) >= 40
        if borderline:
            assert (towards_filed >= 0).all() and towards_filed.median() > 0.1
        else:
            assert (towards_filed < 0).sum() >= 5  # drawn whatever the grade it is filed under
    # the lean folds the same draw: one lean leaves the knee as it was, the other mirrors
    # its severity about the grade and changes nothing else
    plain = render_knee(2, seed=5, index=9)
    changes = sorted(np.abs(render_knee(2, seed=5, index=9, lean=lean) - plain).mean() for lean in (-1, 1))
    assert changes[0] == 0 and 0 < changes[1] < 0.02


def _clean_png_truth(plan):
    """:func:`knee_truth` of the files written as plain PNGs without an injected fault."""
    truth = knee_truth(plan)
    clean = {slot.relpath for slot in plan.slots if slot.fault is None and slot.relpath.endswith(".png")}
    return truth[truth["relpath"].isin(clean)]


def test_built_in_joint_space_width_tracks_the_drawn_one(demo, plan):
    from curate.labels.knee_signs import KNEE_SIGN_NAMES, knee_sign_features

    sample = _clean_png_truth(plan).iloc[::4]
    narrow = KNEE_SIGN_NAMES.index("jsw_narrow")
    measured = [knee_sign_features(read_image(demo / relpath).pixels)[narrow] for relpath in sample["relpath"]]
    drawn = np.minimum(sample["jsw_medial"], sample["jsw_lateral"])
    assert np.corrcoef(measured, drawn)[0, 1] > 0.9


def test_built_in_spot_measures_track_the_drawn_spurs_better_than_the_outline(demo, plan):
    from curate.labels.knee_signs import KNEE_SIGN_NAMES, knee_sign_features

    truth = _clean_png_truth(plan)
    # grades 0-2, where a grade-1 spur must be told from a grade-2 one
    sample = truth[truth["grade"].isin([0, 1, 2])].iloc[::2]
    signs = np.array([knee_sign_features(read_image(demo / relpath).pixels) for relpath in sample["relpath"]])
    measured = dict(zip(KNEE_SIGN_NAMES, signs.T))
    for bone, spot in (("tibia", "spot_tibia_total"), ("femur", "spot_femur_max_total")):
        drawn = sample[f"osteophyte_{bone}_lateral"] + sample[f"osteophyte_{bone}_medial"]
        r_spot = np.corrcoef(measured[spot], drawn)[0, 1]
        r_lip = np.corrcoef(measured[f"lip_{bone}_total"], drawn)[0, 1]
        assert r_spot > 0.7 and r_spot > r_lip + 0.1


# --------------------------------------------------------------------------- the plan, for any seed and scale


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.005, 0.15))
def test_every_plan_keeps_the_layout_and_fault_rules(seed, scale):
    plan = plan_demo(seed, scale)
    expected = scaled_counts(scale)
    counts = Counter((slot.split, slot.label) for slot in plan.slots)
    assert counts == Counter({(s, g): expected[s][g] for s in SPLITS for g in GRADES})
    assert len({slot.relpath for slot in plan.slots}) == plan.total
    assert all(n >= 2 for n in plan.fault_counts().values())
    for slot in plan.slots:
        suffix = ".dcm" if slot.fault in ("dicom_copy", "wrong_modality") else ".png"
        assert slot.relpath == f"{slot.split}/{slot.label}/{slot.participant}{slot.side}{suffix}"
        if slot.source is not None:
            source = plan.slots[slot.source]
            assert source.fault is None and slot.knee.grade == source.label
            if slot.fault == "exact_duplicate" or "label conflict" not in slot.details:
                assert source.label == slot.label
            else:
                assert abs(source.label - slot.label) == 1
    sources = [slot.source for slot in plan.slots if slot.source is not None]
    assert len(sources) == len(set(sources))

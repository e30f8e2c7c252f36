from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import shift

from curate.catalog import format_crop, make_sample_id
from curate.errors import CurateError
from curate.loaders import load
from curate.parallel import Executor
from curate.quality.rules import Thresholds
from curate.quality.scan import scan
from tests.conftest import write_dicom, write_png
from tests.quality.test_measures import _radiograph


def _catalog(root, rows):
    """rows: (relpath, label, patient, split[, extra dict])"""
    records = []
    for rel, label, patient, split, *extra in rows:
        record = {
            "sample_id": make_sample_id("t", rel, (extra[0] if extra else {}).get("crop")),
            "path": rel,
            "label": label,
            "patient_id": patient,
            "source": "t",
            "official_split": split,
        }
        record.update(extra[0] if extra else {})
        records.append(record)
    df = pd.DataFrame(records)
    df.attrs["data_root"] = str(root)
    return df


def _flags(quality, path):
    return set(str(quality.set_index("path").loc[path, "flags"]).split("|")) - {""}


def test_quality_problems_are_flagged_with_reasons(tmp_path):
    img = _radiograph(seed=1, size=128)
    files = {
        "a.png": img,
        "dark.png": (_radiograph(seed=7, size=128) * 0.1).astype(np.uint8),
        "blank.png": np.full_like(img, 120),
        "copy.png": img,
        "other.png": _radiograph(seed=2, size=128),
    }
    for name, pixels in files.items():
        write_png(tmp_path / name, pixels)
    (tmp_path / "broken.png").write_bytes(b"")
    catalog = _catalog(
        tmp_path,
        [("a.png", 1, "p1", "train"), ("dark.png", 1, "p2", "train"), ("blank.png", 2, "p3", "train"),
         ("copy.png", 3, "p4", "test"), ("other.png", 2, "p1", "test"), ("broken.png", 0, "p5", "train")],
    )
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False)
    assert list(quality["sample_id"]) == list(catalog["sample_id"])
    assert "dark" in _flags(quality, "dark.png")
    assert "dark: mean brightness 0.03 < 0.10" in quality.set_index("path").loc["dark.png", "reasons"]
    assert "blank" in _flags(quality, "blank.png")
    assert _flags(quality, "broken.png") == {"unreadable"}
    assert quality.set_index("path").loc["broken.png", "error"] == "zero_bytes"
    # a.png and copy.png: same pixels, different labels and splits
    group = quality.set_index("path").loc[["a.png", "copy.png"]]
    assert group["dup_group"].nunique() == 1 and group["dup_keep"].sum() == 1
    assert group["dup_label_conflict"].all() and group["dup_cross_split"].all()
    redundant = group.index[~group["dup_keep"].astype(bool)][0]
    assert {"exact_duplicate", "duplicate_label_conflict", "duplicate_cross_split"} <= _flags(quality, redundant)
    # patient p1 is in train (a.png) and test (other.png)
    assert "patient_cross_split" in _flags(quality, "other.png")
    assert "grayscale" not in " ".join(quality["flags"].astype(str))


def test_the_copy_kept_is_the_one_trainers_read_and_the_reason_says_so(tmp_path):
    img = _radiograph(seed=3, size=128)
    write_png(tmp_path / "a_16bit.png", img.astype(np.uint16) * 16)  # 12-bit values in a 16-bit file
    write_png(tmp_path / "b_8bit.png", img)
    write_png(tmp_path / "c_8bit_copy.png", img)
    # the 16-bit copy is first by sample id and has the highest bit depth; neither wins
    catalog = _catalog(tmp_path, [("a_16bit.png", 3, "p1", "train"), ("b_8bit.png", 3, "p2", "train")])
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False).set_index("path")
    assert quality["dup_group"].nunique() == 1
    assert quality.loc["b_8bit.png", "dup_keep"] and not quality.loc["a_16bit.png", "dup_keep"]
    assert quality.loc["b_8bit.png", "dup_keep_reason"] == "an 8-bit image file trainers read as it is"
    assert "kept: an 8-bit image file trainers read as it is" in quality.loc["a_16bit.png", "reasons"]
    # a label most members agree on wins over a readable file holding the odd label
    catalog = _catalog(
        tmp_path,
        [("a_16bit.png", 2, "p1", "train"), ("b_8bit.png", 3, "p2", "train"), ("c_8bit_copy.png", 2, "p3", "train")],
    )
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False).set_index("path")
    kept = quality.index[quality["dup_keep"].astype(bool)]
    assert list(kept) == ["c_8bit_copy.png"]
    assert quality.loc["c_8bit_copy.png", "dup_keep_reason"] == (
        "label 2 shared by most members; an 8-bit image file trainers read as it is"
    )
    # a labelled copy is kept over an unlabelled one, whatever their sample ids
    # (c_8bit_copy.png's sample id sorts first, so the old rule kept it)
    catalog = _catalog(tmp_path, [("b_8bit.png", 1, "p2", "train"), ("c_8bit_copy.png", None, "p3", "train")])
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False).set_index("path")
    assert list(quality.index[quality["dup_keep"].astype(bool)]) == ["b_8bit.png"]


def test_two_knees_of_one_bilateral_file_are_not_duplicates(tmp_path):
    half = _radiograph(seed=4, size=64)
    write_png(tmp_path / "bilateral.png", np.hstack([half, half]))  # identical halves on purpose
    catalog = _catalog(
        tmp_path,
        [("bilateral.png", 1, "p1", None, {"side": "R", "crop": format_crop((0, 0, 64, 64))}),
         ("bilateral.png", 2, "p1", None, {"side": "L", "crop": format_crop((64, 0, 128, 64))})],
    )
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False)
    assert quality["dup_group"].isna().all()
    assert quality["readable"].all() and (quality["width"] == 64).all()


def test_dicom_laterality_modality_and_monochrome1_checks(tmp_path):
    img = _radiograph(seed=5, size=64)
    write_dicom(tmp_path / "9000001L.dcm", img, laterality="R", photometric="MONOCHROME1")
    write_dicom(tmp_path / "9000002R.dcm", img[::-1].copy(), laterality="R", modality="MR", patient_id="9000002")
    catalog = load("oai-kl", _kl_root(tmp_path)).catalog
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False)
    by_name = quality.assign(name=quality["path"].str.split("/").str[-1]).set_index("name")
    assert {"laterality_mismatch", "monochrome1"} <= set(by_name.loc["9000001L.dcm", "flags"].split("|"))
    assert "wrong_modality" in by_name.loc["9000002R.dcm", "flags"]
    assert "laterality_mismatch" not in by_name.loc["9000002R.dcm", "flags"]


def test_dicoms_with_burned_in_annotation_are_flagged_for_review(tmp_path):
    import pydicom

    img = _radiograph(seed=6, size=64)
    for name, burned in (("a.dcm", "YES"), ("b.dcm", "NO"), ("c.dcm", None)):
        path = write_dicom(tmp_path / "d" / name, img, sop_uid=f"1.2.3.{len(name)}{ord(name[0])}")
        if burned:
            ds = pydicom.dcmread(path)
            ds.BurnedInAnnotation = burned
            ds.save_as(path)
    catalog = load("dicom", tmp_path / "d").catalog
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False).set_index("path")
    assert "burned_in_annotation" in quality.loc["a.dcm", "flags"].split("|")
    assert "names or dates may be written in the pixels" in quality.loc["a.dcm", "reasons"]
    assert "burned_in_annotation" not in (quality.loc["b.dcm", "flags"] + quality.loc["c.dcm", "flags"])


def _kl_root(tmp_path):
    root = tmp_path / "kl"
    for f in sorted(tmp_path.glob("*.dcm")):
        (root / "train" / "2").mkdir(parents=True, exist_ok=True)
        shutil.move(f, root / "train" / "2" / f.name)
    return root


def test_thresholds_are_overridable_and_checked():
    assert Thresholds.from_dict({"dark_mean": "0.2"}).dark_mean == 0.2
    assert Thresholds.from_dict({"allowed_modalities": "cr,dx,mr"}).allowed_modalities == ("CR", "DX", "MR")
    with pytest.raises(CurateError, match="unknown scan threshold.*darkness"):
        Thresholds.from_dict({"darkness": 1})
    with pytest.raises(CurateError, match="dark_mean needs a float"):
        Thresholds.from_dict({"dark_mean": "very"})


def test_cache_skips_unchanged_files_and_survives_a_renamed_folder(tmp_path):
    data = tmp_path / "data"
    for k in range(4):
        write_png(data / f"{k}.png", _radiograph(seed=10 + k, size=64))
    catalog = _catalog(data, [(f"{k}.png", k % 2, f"p{k}", None) for k in range(4)])
    cache = tmp_path / "cache"
    first = scan(catalog, executor=Executor(workers=1), cache_dir=cache)
    again = scan(catalog, executor=Executor(workers=1), cache_dir=cache)
    assert (first.attrs["measured"], again.attrs["measured"], again.attrs["cached"]) == (4, 0, 4)
    pd.testing.assert_frame_equal(first, again)
    write_png(data / "0.png", _radiograph(seed=99, size=64))  # edited: measured again
    edited = scan(catalog, executor=Executor(workers=1), cache_dir=cache)
    assert edited.attrs["measured"] == 1
    moved = tmp_path / "moved"
    shutil.move(data, moved)
    catalog.attrs["data_root"] = str(moved)
    renamed = scan(catalog, executor=Executor(workers=1), cache_dir=cache)
    assert renamed.attrs["measured"] == 0


# ------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def knee_copies(shared_data, tmp_path_factory):
    """The real knee sample plus re-encoded, resized, shifted and brightened copies of a few images."""
    src = shared_data / "knee_kl_sample"
    root = tmp_path_factory.mktemp("knees")
    shutil.copytree(src, root / "kl")
    originals = sorted((root / "kl" / "train").glob("*/*.png"))[::25][:8]
    expected = {}
    for k, original in enumerate(originals):
        pixels = np.asarray(Image.open(original))
        grade = original.parent.name
        variants = {
            "jpeg": _jpeg(pixels),
            "resized": np.asarray(Image.fromarray(pixels).resize((256, 256), Image.BICUBIC)),
            "shifted": shift(pixels.astype(float), (3, -4), order=0, mode="nearest").astype(np.uint8),
            "brighter": np.clip(pixels.astype(float) * 1.08 + 4, 0, 255).astype(np.uint8),
        }
        for v, (kind, image) in enumerate(variants.items()):
            name = f"train/{grade}/{8000000 + 10 * k + v}L.png"
            write_png(root / "kl" / name, image)
            expected[name] = original.relative_to(root / "kl").as_posix()
    return root / "kl", expected


def _jpeg(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())))


def test_real_knees_group_only_true_copies(knee_copies):
    root, expected = knee_copies
    catalog = load("oai-kl", root).catalog
    catalog.attrs["data_root"] = str(root)
    quality = scan(catalog, executor=Executor(workers=2), cache_dir=False)
    groups = quality.dropna(subset=["dup_group"]).groupby("dup_group")["path"].agg(set)
    found = {frozenset(g) for g in groups}
    want: dict[str, set] = {}
    for copy, original in expected.items():
        want.setdefault(original, {original}).add(copy)
    assert found == {frozenset(g) for g in want.values()}, "every copy with its original, and nothing else"


def test_real_dicom_samples_scan_without_crashing(shared_data):
    catalog = load("dicom", shared_data / "dicom_samples").catalog
    catalog.attrs["data_root"] = str(shared_data / "dicom_samples")
    quality = scan(catalog, executor=Executor(workers=1), cache_dir=False).set_index("path")
    assert quality.loc["radiographs/RG1_J2KI.dcm", "readable"]
    errors = quality.loc[[p for p in quality.index if p.startswith("broken/")], "error"].to_dict()
    assert errors == {
        "broken/JPEG-lossy.dcm": "corrupt_pixel_data",
        "broken/MR_truncated.dcm": "truncated",
        "broken/meta_missing_tsyntax.dcm": "missing_transfer_syntax",
        "broken/no_meta.dcm": "missing_pixel_data",
    }
    assert "wrong_modality" in quality.loc["broken/MR_truncated.dcm", "flags"]


def test_dask_local_cluster_gives_the_same_table(shared_data, tmp_path):
    pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")
    catalog = load("oai-kl", shared_data / "knee_kl_sample").catalog
    catalog.attrs["data_root"] = str(shared_data / "knee_kl_sample")
    catalog = catalog.iloc[:120]
    local = scan(catalog, executor=Executor(workers=2), cache_dir=False)
    dask = scan(catalog, executor=Executor(workers=2, dask_local=True), cache_dir=False)
    pd.testing.assert_frame_equal(local, dask)

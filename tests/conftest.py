"""Fixtures shared by the test suite."""

from __future__ import annotations

from pathlib import Path

import os

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

# CI must give the same answer every run: under CI, property tests draw the same examples each
# time and keep no example database. Locally they explore with fresh random draws.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data in ../shared/data beside the repository (skip when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present beside the project's checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def default_demo(tmp_path_factory) -> Path:
    """The full default demo (seed 0, 8,260 files), made once per test session (about 40 s on 2 cores)."""
    from curate.demo import make_demo

    root = tmp_path_factory.mktemp("default-demo") / "kl"
    make_demo(root, seed=0, scale=1.0, workers=2)
    return root


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """Write ``pixels`` (uint8 or uint16, 2-D) as a PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def knee_like(seed: int, size: int = 32) -> np.ndarray:
    """A small random 8-bit image, different for every seed."""
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    patient_id: str = "P1",
    modality: str = "DX",
    body_part: str | None = "KNEE",
    laterality: str | None = None,
    window: tuple[float, float] | None = None,
    sop_uid: str = "1.2.826.0.1.3680043.8.498.1",
    preamble: bool = True,
) -> Path:
    """Write a small uncompressed DICOM with pydicom (explicit VR little endian)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.PatientID = patient_id
    ds.Modality = modality
    if body_part:
        ds.BodyPartExamined = body_part
    if laterality:
        ds.ImageLaterality = laterality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated = bits
    ds.BitsStored = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=preamble)
    return path

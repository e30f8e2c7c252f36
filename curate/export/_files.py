"""What every export shares: the output folder rules, image files named by sample_id, the record."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

from curate.errors import CurateError

__all__ = ["LINKS", "IMAGE_EXTENSIONS", "ImagePlacer", "check_output", "write_record", "label_value", "repeated"]

LINKS = ("symlink", "hardlink", "copy")
#: Files with these extensions are linked or copied as they are; anything else (DICOM, files
#: without extension) and every cropped sample is written as an 8-bit PNG. The set is
#: torchvision's ImageFolder extensions that Pillow (hence Hugging Face datasets) also reads.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
RECORD_FILE = "curate_export.json"


def check_output(output: str | os.PathLike) -> Path:
    """Refuse an output that exists and is not an empty folder."""
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise CurateError(f"{output}: exists and is not an empty folder; give a new output folder")
    return output


def label_value(value: object) -> object:
    """A label as JSON wants it: whole numbers as int, anything else as text."""
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return int(number) if number == int(number) else str(value)


def repeated(rows: pd.DataFrame) -> pd.DataFrame:
    """Each row ``repeat`` times in a row (at least once), with ``copy`` 0, 1, ... among its repeats."""
    times = rows["repeat"].fillna(1).astype(int).clip(lower=1)
    out = rows.loc[rows.index.repeat(times)].copy()
    out["copy"] = out.groupby(level=0).cumcount().to_numpy()
    return out.reset_index(drop=True)


class ImagePlacer:
    """Puts a sample's image into an export folder under a name carrying its sample_id.

    Parameters
    ----------
    data_root : path
        Where the manifest's relative paths live.
    link : {"symlink", "hardlink", "copy"}
        How files that need no conversion get there. Converted files (DICOM,
        crops, other extensions) are always written as PNG.
    """

    def __init__(self, data_root: str | os.PathLike, link: str = "symlink"):
        if link not in LINKS:
            raise CurateError(f"unknown link {link!r}: {', '.join(LINKS)}")
        self.data_root = Path(data_root)
        self.link = link
        self.converted = 0

    def needs_png(self, row) -> bool:
        crop = row.get("crop")
        has_crop = crop is not None and not pd.isna(crop) and str(crop).strip() != ""
        return has_crop or Path(str(row["path"])).suffix.lower() not in IMAGE_EXTENSIONS or self._is_dicom(row)

    def _is_dicom(self, row) -> bool:
        from curate.imaging import is_dicom

        source = self.data_root / str(row["path"])
        return source.is_file() and is_dicom(source)

    def file_name(self, row) -> str:
        """``<sample_id>.<ext>``: the extension of the source, or ``.png`` when converted."""
        ext = ".png" if self.needs_png(row) else Path(str(row["path"])).suffix.lower()
        return f"{row['sample_id']}{ext}"

    def place(self, row, folder: Path) -> str:
        """Write the image of ``row`` into ``folder`` (once) and return its file name."""
        name = self.file_name(row)
        target = folder / name
        if target.exists() or target.is_symlink():
            return name
        folder.mkdir(parents=True, exist_ok=True)
        source = (self.data_root / str(row["path"])).resolve()
        if not source.is_file():
            raise CurateError(f"sample {row['sample_id']}: {source} not found (run `curate manifest verify`)")
        if self.needs_png(row):
            self._write_png(row, source, target)
        elif self.link == "symlink":
            os.symlink(source, target)
        elif self.link == "hardlink":
            try:
                os.link(source, target)
            except OSError as exc:
                raise CurateError(f"cannot hardlink {source} into {folder} ({exc.strerror}); use --link copy") from None
        else:
            shutil.copyfile(source, target)
        return name

    def _write_png(self, row, source: Path, target: Path) -> None:
        from PIL import Image

        from curate.catalog import parse_crop
        from curate.imaging import DecodeFailure, read_image

        crop = row.get("crop")
        box = parse_crop(crop) if crop is not None and not pd.isna(crop) and str(crop).strip() else None
        try:
            pixels = read_image(source, box).as_uint8()
        except DecodeFailure as exc:
            raise CurateError(f"sample {row['sample_id']}: {exc}") from None
        Image.fromarray(pixels).save(target, format="PNG")
        self.converted += 1


def write_record(folder: Path, manifest, fmt: str, **details) -> dict:
    """Write ``curate_export.json``: which manifest version, which format, what was written."""
    from curate import __version__

    record = {
        "manifest": manifest.name,
        "version": manifest.version,
        "ref": manifest.ref,
        "format": fmt,
        "curate_version": __version__,
        **details,
    }
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return record

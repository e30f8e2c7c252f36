"""What every export shares: the output folder rules, image files named by sample_id, the record."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

import pandas as pd

from curate.errors import CurateError
from curate.parallel import Executor
from curate.rendering import Preprocessing, encode, render, why_converted

__all__ = ["LINKS", "IMAGE_EXTENSIONS", "ImagePlacer", "check_output", "write_record", "label_value", "repeated"]

LINKS = ("symlink", "hardlink", "copy")
#: Only files with these extensions may be linked as they are (when :func:`why_converted` finds
#: nothing to convert): torchvision's ImageFolder extensions that Pillow (hence Hugging Face
#: datasets) also reads. Anything else (DICOM, files without extension) is rendered.
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

    Follows the one image policy (:mod:`curate.rendering`): a file that a plain
    Pillow ``convert("RGB")`` shows as it is (8-bit grayscale or RGB, no crop)
    is linked or copied; any other (16-bit, DICOM, MONOCHROME1, palette, crops)
    and every file when ``preprocessing`` changes pixels is rendered by curate's
    decoder and written as a new file. Renderings are queued by :meth:`place`
    and written by :meth:`flush`, in parallel.

    Parameters
    ----------
    data_root : path
        Where the manifest's relative paths live.
    link : {"symlink", "hardlink", "copy"}
        How files that need no conversion get there.
    preprocessing : Preprocessing, optional
        Trainer-side preprocessing (default: none, files as decoded).
    executor : Executor, optional
        Where renderings run (default: local processes).
    paths : dict, optional
        Sample id -> path under ``data_root``, for manifests that name no files
        (de-identified: the private catalog's paths).
    render_all : bool
        Render every image, even those a reader would show as they are: a
        re-encoded file carries no text chunks or metadata of its source.
    """

    def __init__(
        self,
        data_root: str | os.PathLike,
        link: str = "symlink",
        preprocessing: Preprocessing | None = None,
        executor: Executor | None = None,
        *,
        paths: dict[str, str] | None = None,
        render_all: bool = False,
    ):
        if link not in LINKS:
            raise CurateError(f"unknown link {link!r}: {', '.join(LINKS)}")
        self.data_root = Path(data_root)
        if not self.data_root.is_dir():
            raise CurateError(f"data root {self.data_root} is not a folder (give --data-root where the images are now)")
        self.link = link
        self.preprocessing = preprocessing or Preprocessing()
        self.executor = executor
        self.linked = 0
        self.converted = 0
        self.rendered_because: dict[str, int] = {}
        self._queue: list[tuple[str, str, str, str]] = []
        self._queued: set[str] = set()
        self._folders: tuple[Path, Path] | None = None
        self._policy: dict[tuple[str, str], str | None] = {}
        self._sources: dict[str, Path] = {}
        self.paths = paths
        self.render_all = render_all

    @property
    def private(self) -> bool:
        """True when nothing written may name a source file (de-identified manifests)."""
        return self.paths is not None

    def bind(self, tmp: Path, output: Path) -> None:
        """Say that files written under ``tmp`` will live under ``output`` (see :meth:`final_path`)."""
        self._folders = (Path(tmp), Path(output).resolve())

    def final_path(self, path: Path) -> Path:
        """Where ``path``, written in the temporary export folder, is once the export is in place."""
        if self._folders is None:
            return Path(path).resolve()
        tmp, output = self._folders
        return output / Path(path).relative_to(tmp)

    def source(self, row) -> Path:
        """The sample's file, absolute; a missing one is a one-line error naming the sample."""
        relative = self.paths.get(str(row["sample_id"])) if self.paths is not None else str(row["path"])
        if relative is None:
            raise CurateError(f"sample {row['sample_id']}: not in the private catalog given")
        if relative not in self._sources:  # resolved and checked once per file, however often it is asked
            source = (self.data_root / relative).resolve()
            if not source.is_file():
                where = f"sample {row['sample_id']}" if self.private else f"sample {row['sample_id']}: {source}"
                raise CurateError(f"{where} not found (run `curate manifest verify`)")
            self._sources[relative] = source
        return self._sources[relative]

    def conversion(self, row) -> str | None:
        """Why the sample's image is rendered instead of linked (None: linked as it is)."""
        crop = _crop_text(row.get("crop"))
        key = (str(self.source(row)) if self.private else str(row["path"]), crop)
        if key not in self._policy:
            if self.preprocessing.changes_pixels:
                self._policy[key] = "preprocessing"
            elif self.render_all:
                self._policy[key] = "de-identified: re-encoded"
            else:
                reason = why_converted(self.source(row), crop)
                if reason is None and Path(key[0]).suffix.lower() not in IMAGE_EXTENSIONS:
                    reason = "extension"
                self._policy[key] = reason
        return self._policy[key]

    def file_name(self, row) -> str:
        """``<sample_id>.<ext>``: the extension of the source, or that of the rendering."""
        rendered = self.conversion(row) is not None
        ext = self.preprocessing.extension if rendered else Path(str(row["path"])).suffix.lower()
        return f"{row['sample_id']}{ext}"

    def place(self, row, folder: Path) -> str:
        """Put the image of ``row`` into ``folder`` (once) and return its file name.

        A rendering is queued: the file exists after :meth:`flush`.
        """
        name = self.file_name(row)
        target = folder / name
        if target.exists() or target.is_symlink() or str(target) in self._queued:
            return name
        folder.mkdir(parents=True, exist_ok=True)
        source = self.source(row)
        reason = self.conversion(row)
        if reason is not None:
            self._queue.append((str(row["sample_id"]), str(source), _crop_text(row.get("crop")), str(target)))
            self._queued.add(str(target))
            self.rendered_because[reason] = self.rendered_because.get(reason, 0) + 1
            return name
        if self.link == "symlink":
            os.symlink(source, target)
        elif self.link == "hardlink":
            try:
                os.link(source, target)
            except OSError as exc:
                raise CurateError(f"cannot hardlink {source} into {folder} ({exc.strerror}); use --link copy") from None
        else:
            shutil.copyfile(source, target)
        self.linked += 1
        return name

    def flush(self, progress: Callable[[str, int], Callable[[int], None]] | None = None) -> None:
        """Write every queued rendering (in parallel chunks); a file that cannot be decoded is one line."""
        from curate._png import compile_unfilter
        from curate.parallel import chunked, map_chunks

        queue, self._queue = self._queue, []
        if not queue:
            return

        # loaded once here, before the workers fork, instead of once in every worker (0.4 s each)
        compile_unfilter()
        executor = self.executor or Executor()
        size = max(16, min(256, len(queue) // (4 * executor.n_workers) or 16))
        advance = progress("rendering images", len(queue)) if progress else None
        options = asdict(self.preprocessing)
        for done, failures in map_chunks(partial(_render_chunk, options=options), chunked(queue, size), executor):
            if failures:
                sample_id, message = failures[0]
                raise CurateError(f"sample {sample_id}: {message}; the scan's exclusions leave unreadable files out")
            if advance:
                advance(done)
        self.converted += len(queue)

    def record(self) -> dict:
        """What was done to pixels, for ``curate_export.json`` and the manifest's export log."""
        return {
            "preprocessing": self.preprocessing.as_dict(),
            "pixels_id": self.preprocessing.pixels_id,
            "images": {"linked": self.linked, "rendered": self.converted, "why_rendered": dict(sorted(self.rendered_because.items()))},
            "link": self.link,
        }


def _crop_text(crop: object) -> str:
    if crop is None or (not isinstance(crop, str) and pd.isna(crop)):
        return ""
    return str(crop).strip()


def _render_chunk(items: list[tuple[str, str, str, str]], options: dict) -> tuple[int, list[tuple[str, str]]]:
    """Render and write a chunk of ``(sample_id, source, crop, target)``; return its size and the failures."""
    from curate.imaging import DecodeFailure

    pre = Preprocessing(**options)
    failures = []
    for sample_id, source, crop, target in items:
        try:
            pixels = render(source, crop or None, pre)
        except DecodeFailure as exc:
            failures.append((sample_id, str(exc)))
            continue
        with open(target, "wb") as fh:
            fh.write(encode(pixels, pre.image_format))
    return len(items), failures


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

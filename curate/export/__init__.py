"""Exports that trainers consume, one module per format.

==================  ==========================================================
``llava``           ``<split>.json`` conversation lists + ``images/``
``hf-imagefolder``  ``train/ validation/ test/`` with images + ``metadata.parquet``, ``README.md``
``imagefolder``     ``<split>/<class>/<image>`` (torchvision ``ImageFolder``)
``csv``, ``jsonl``  the rows with absolute image paths (renderings in ``images/``)
``croissant``       Croissant JSON-LD (every sha256), ``images/``, a table
==================  ==========================================================

Every export is written into a temporary folder and renamed into place, and
records the manifest name and version and what was done to pixels in
``curate_export.json`` (also appended to the version's ``exports.jsonl``). Image
files are named ``<sample_id>.<ext>``. Images follow the one image policy
(:mod:`curate.rendering`): files a plain Pillow ``convert("RGB")`` shows as they
are (8-bit gray or RGB) are linked; 16-bit files, DICOM, MONOCHROME1, odd modes
and crops are rendered as 8-bit PNGs by curate's decoder, and so is every image
when a :class:`~curate.rendering.Preprocessing` changes pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from curate._io import atomic_directory
from curate.errors import CurateError
from curate.export._files import LINKS, ImagePlacer, check_output, write_record
from curate.export.croissant import finish_croissant, write_croissant
from curate.manifest.exports import log_export, read_export_log
from curate.manifest.model import private_paths
from curate.parallel import Executor
from curate.rendering import Preprocessing
from curate.export.hf_imagefolder import write_hf_imagefolder
from curate.export.imagefolder import write_imagefolder
from curate.export.llava import DEFAULT_ANSWER, DEFAULT_QUESTION, write_llava
from curate.export.tables import write_csv, write_jsonl

__all__ = [
    "FORMATS",
    "LINKS",
    "DEFAULT_QUESTION",
    "DEFAULT_ANSWER",
    "Preprocessing",
    "export_manifest",
    "read_export_log",
]

#: Format name -> writer ``(manifest, folder, placer, **options) -> dict``.
FORMATS: dict[str, Callable[..., dict]] = {
    "llava": write_llava,
    "hf-imagefolder": write_hf_imagefolder,
    "imagefolder": write_imagefolder,
    "csv": write_csv,
    "jsonl": write_jsonl,
    "croissant": write_croissant,
}
#: Format name -> ``(manifest, folder, details) -> details``, run once every image is written.
FINISHERS: dict[str, Callable[..., dict]] = {"croissant": finish_croissant}


def export_manifest(
    manifest,
    fmt: str,
    output: str | os.PathLike,
    *,
    link: str = "symlink",
    data_root: str | os.PathLike | None = None,
    question: str | None = None,
    answer: str | None = None,
    preprocessing: Preprocessing | dict | None = None,
    executor: Executor | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    catalog: pd.DataFrame | None = None,
) -> dict:
    """Export ``manifest`` (a :class:`~curate.manifest.Manifest`) to ``output`` in format ``fmt``.

    Parameters
    ----------
    manifest : Manifest
        From :func:`curate.manifest.open_manifest` or :func:`~curate.manifest.build_manifest`.
    fmt : str
        One of :data:`FORMATS`.
    output : path
        A folder that does not exist yet or is empty.
    link : {"symlink", "hardlink", "copy"}
        How image files that need no conversion are put in place.
    data_root : path, optional
        Where the images are now (default: the manifest's recorded data root).
    question, answer : str, optional
        LLaVA templates, filled from the row (``{label}``, ``{split}``, any column).
    preprocessing : Preprocessing or dict, optional
        Trainer-side preprocessing (size and fit, window, bit depth, CLAHE, format);
        default: none, so only files a Pillow reader would get wrong are rendered.
    executor : Executor, optional
        Where images are rendered (default: local processes).
    progress : callable, optional
        ``progress(description, total)`` returning ``advance(n)``.
    catalog : DataFrame, optional
        The private catalog of a de-identified manifest (its files are named nowhere
        else). Such an export copies or renders every image under its sample id, so
        no path, file name, link target or text chunk of a source leaves with it.

    Returns
    -------
    dict
        The record written to ``curate_export.json``, plus ``output``. It is also
        appended to the version's export log (``exports.jsonl``) when the manifest
        comes from a store.

    Raises
    ------
    CurateError
        Unknown format, link or preprocessing option, an output folder that is not
        empty, a missing data root, a missing or undecodable image; nothing is left behind.
    """
    if fmt not in FORMATS:
        raise CurateError(f"unknown export format {fmt!r}: {', '.join(FORMATS)}")
    if (question is not None or answer is not None) and fmt != "llava":
        raise CurateError("--question and --answer are templates of the llava format")
    if not isinstance(preprocessing, Preprocessing):
        preprocessing = Preprocessing.from_dict(preprocessing)
    output = check_output(output)
    deid = bool(manifest.card.get("deid"))
    paths = None
    if deid:
        paths, catalog_root = private_paths(manifest, catalog)
        data_root = data_root if data_root is not None else catalog_root
        if link == "symlink":
            link = "copy"  # a link's target names the source file
    placer = ImagePlacer(
        data_root if data_root is not None else manifest.card["data_root"], link, preprocessing, executor,
        paths=paths, render_all=deid,
    )
    options = {}
    if fmt == "llava":
        options = {"question": question or DEFAULT_QUESTION, "answer": answer or DEFAULT_ANSWER}
    with atomic_directory(output) as tmp:
        placer.bind(tmp, output)
        details = FORMATS[fmt](manifest, Path(tmp), placer, **options)
        placer.flush(progress)
        if fmt in FINISHERS:
            details = FINISHERS[fmt](manifest, Path(tmp), details)
        record = write_record(Path(tmp), manifest, fmt, **placer.record(), **details)
    record = {**record, "output": str(Path(output).resolve())}
    log_export(manifest, record)
    return record

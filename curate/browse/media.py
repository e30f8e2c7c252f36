"""Images the FiftyOne App can show: the file itself, or a cached PNG rendering.

The App's browser shows a file the way a plain viewer does, which is right only for
single-frame 8-bit grayscale or RGB files without a crop
(:func:`curate.rendering.shown_as_is`). Everything else (DICOM, 16-bit PNGs holding
12-bit values, which a browser shows almost black, palette or 1-bit files, crops) is
rendered once by :func:`curate.rendering.render`, with the scan's normalization, and kept
under ``<cache>/<sha256[:2]>/<sha256>[-<crop>].png``. The key is the file's content and
the crop, so a rendering is shared by manifests and never stale.
"""

from __future__ import annotations

import os
from pathlib import Path

from curate.rendering import encode, render, shown_as_is

__all__ = ["render_key", "rendering_path", "media_path"]


def _crop_text(crop: object) -> str:
    """The crop as text, ``""`` for none (None, NaN or pandas' NA from a table)."""
    if crop is None:
        return ""
    try:
        import pandas as pd

        if pd.isna(crop):
            return ""
    except (TypeError, ValueError):
        pass
    return str(crop).strip()


def render_key(sha256: str, crop: object = None) -> str:
    """File name stem of a rendering: the content hash, plus the crop when there is one."""
    crop = _crop_text(crop)
    return f"{sha256}-{crop.replace(',', '_')}" if crop else str(sha256)


def rendering_path(cache: str | os.PathLike, sha256: str, crop: object = None) -> Path:
    """Where the rendering of the file with content ``sha256`` (and ``crop``) is cached."""
    key = render_key(sha256, crop)
    return Path(cache) / key[:2] / f"{key}.png"


def media_path(
    source: str | os.PathLike, sha256: str | None, crop: object, cache: str | os.PathLike
) -> tuple[str, bool]:
    """The path to give FiftyOne for ``source``, rendering it into ``cache`` when needed.

    Parameters
    ----------
    source : path
        The image file.
    sha256 : str or None
        Its content hash as the manifest records it (None: hashed here, when a
        rendering is needed, so two files never share one).
    crop : str or None
        The sample's pixel box ``"x0,y0,x1,y1"``.
    cache : path
        Folder of the renderings.

    Returns
    -------
    (str, bool)
        The path, and whether it can be shown (False: unreadable, the source path is returned).
    """
    if shown_as_is(source, crop):
        return str(source), True
    from curate._io import atomic_path, sha256_file

    try:
        out = rendering_path(cache, sha256 or sha256_file(source), crop)
        if out.is_file():
            return str(out), True
        data = encode(render(source, crop), "png")
    except Exception:  # missing or undecodable files are flagged by the scan; the App shows them as missing
        return str(source), False
    with atomic_path(out) as partial:  # a concurrent build never sees half a file
        partial.write_bytes(data)
    return str(out), True

"""Images the FiftyOne App can show: the file itself, or a cached PNG rendering.

The App's browser shows PNG/JPEG, not DICOM, and knows nothing of a manifest's crops; those
samples are rendered once (:func:`curate.imaging.read_image`, windowed to 8 bits) and kept
under ``<cache>/<sha256[:2]>/<sha256>[-<crop>].png``. The key is the file's content and the
crop, so a rendering is shared by manifests and never stale.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["VIEWABLE", "needs_rendering", "render_key", "media_path"]

VIEWABLE = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})


def _crop_text(crop: object) -> str:
    if crop is None:
        return ""
    try:
        import pandas as pd

        if pd.isna(crop):
            return ""
    except (TypeError, ValueError):
        pass
    return str(crop).strip()


def needs_rendering(path: str | os.PathLike, crop: object = None) -> bool:
    """True for a crop or a file type the App cannot show (DICOM, 16-bit TIFF...)."""
    return bool(_crop_text(crop)) or Path(path).suffix.lower() not in VIEWABLE


def render_key(sha256: str, crop: object = None) -> str:
    """File name stem of a rendering: the content hash, plus the crop when there is one."""
    crop = _crop_text(crop)
    return f"{sha256}-{crop.replace(',', '_')}" if crop else str(sha256)


def media_path(source: str | os.PathLike, sha256: str, crop: object, cache: str | os.PathLike) -> tuple[str, bool]:
    """The path to give FiftyOne for ``source``, rendering it into ``cache`` when needed.

    Returns
    -------
    (str, bool)
        The path, and whether it could be shown (False: unreadable, the source path is returned).
    """
    if not needs_rendering(source, crop):
        return str(source), True
    key = render_key(sha256, crop)
    out = Path(cache) / key[:2] / f"{key}.png"
    if out.is_file():
        return str(out), True
    from PIL import Image

    from curate.catalog import parse_crop
    from curate.imaging import read_image

    text = _crop_text(crop)
    try:
        pixels = read_image(source, parse_crop(text) if text else None).as_uint8()
    except Exception:  # unreadable files are flagged by the scan; the App shows them as missing
        return str(source), False
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    Image.fromarray(pixels).save(partial, format="PNG")
    os.replace(partial, out)  # atomic: a concurrent build never sees half a file
    return str(out), True

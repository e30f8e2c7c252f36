"""A map-style dataset over one split of a manifest, for PyTorch trainers.

torch is optional: the class subclasses ``torch.utils.data.Dataset`` when torch is
installed and works as a plain map-style dataset (``len`` and indexing, which is
all ``DataLoader`` needs) when it is not. Images are read with curate's decoder, so
DICOM sources, crops and 16-bit files come out the same way as everywhere else, and
a :class:`~curate.rendering.Preprocessing` gives exactly the pixels of an export made
with the same options (the one image policy, :mod:`curate.rendering`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from curate.catalog import parse_crop
from curate.errors import CurateError
from curate.imaging import read_image
from curate.manifest import load_manifest
from curate.rendering import Preprocessing, render

try:  # optional dependency
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover - exercised where torch is absent
    _Base = object

__all__ = ["ManifestDataset"]


class ManifestDataset(_Base):
    """Samples of one split of a manifest as ``(image, label)`` pairs.

    Parameters
    ----------
    manifest : str, path or DataFrame
        ``name``, ``name@version``, a version folder, or rows from :func:`curate.load_manifest`.
    split : str
        ``train``, ``val`` or ``test``.
    store : path, optional
        The manifest store.
    transform : callable, optional
        Applied to the image (a float32 array in [0, 1], bone bright) before it is returned.
    expand_repeats : bool
        Repeat a sample as many times as its ``repeat`` (oversampled balanced sets).
    data_root : path, optional
        Where the files are, when they moved since the manifest was written.
    preprocessing : Preprocessing or dict, optional
        Size and fit, window, CLAHE, bit depth as in ``curate export``: images are
        then those pixels, scaled to float32 in [0, 1].
    """

    def __init__(
        self,
        manifest: str | os.PathLike | pd.DataFrame,
        split: str = "train",
        *,
        store: str | os.PathLike | None = None,
        transform: Callable[[np.ndarray], Any] | None = None,
        expand_repeats: bool = True,
        data_root: str | os.PathLike | None = None,
        preprocessing: Preprocessing | dict | None = None,
    ):
        rows = manifest if isinstance(manifest, pd.DataFrame) else load_manifest(manifest, store)
        card = rows.attrs.get("card", {})
        root = Path(data_root or card.get("data_root") or ".")
        part = rows[rows["split"] == split]
        if part.empty:
            splits = ", ".join(sorted(rows["split"].unique()))
            raise CurateError(f"manifest has no samples in split {split!r}; its splits are {splits}")
        if expand_repeats and "repeat" in part.columns:
            part = part.loc[part.index.repeat(part["repeat"].fillna(1).astype(int).clip(lower=1))]
        self.rows = part.reset_index(drop=True)
        self.root = root
        self.transform = transform
        self.preprocessing = (
            preprocessing if isinstance(preprocessing, Preprocessing) or preprocessing is None
            else Preprocessing.from_dict(preprocessing)
        )
        self.classes = sorted(rows["label"].dropna().unique().tolist())
        self.class_to_index = {c: k for k, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        row = self.rows.iloc[index]
        crop = row.get("crop") if "crop" in self.rows.columns else None
        if self.preprocessing is not None:
            rendered = render(self.root / row["path"], crop, self.preprocessing)
            image = rendered.astype(np.float32) * np.float32(1 / np.iinfo(rendered.dtype).max)
        else:
            box = parse_crop(crop) if crop is not None and pd.notna(crop) else None
            image = read_image(self.root / row["path"], box).pixels
        if self.transform is not None:
            image = self.transform(image)
        return image, self.class_to_index[row["label"]]

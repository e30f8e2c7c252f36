"""torchvision ``ImageFolder``: ``root/<split>/<class>/<sample_id>.<ext>``.

Give ``root/train`` (or ``val``, ``test``) to ``torchvision.datasets.ImageFolder``.
It numbers classes by sorting the folder names as text, so class indices follow
that order (recorded in ``curate_export.json``); a split missing a class numbers
the others differently, which the record also shows. One file per sample: repeats
are not copied (use ``weight``/``repeat`` from the manifest or the csv export with a
sampler).
"""

from __future__ import annotations

from pathlib import Path


from curate.errors import CurateError
from curate.export._files import ImagePlacer

__all__ = ["write_imagefolder"]


def write_imagefolder(manifest, folder: Path, placer: ImagePlacer) -> dict:
    """Write ``<split>/<class>/`` folders of images; return classes and counts per split."""
    rows = manifest.rows
    unlabelled = rows["label"].isna()
    if unlabelled.any():
        raise CurateError(
            f"{int(unlabelled.sum())} sample(s) have no label and cannot go into a class folder, "
            f"e.g. {rows.loc[unlabelled, 'sample_id'].iloc[0]}"
        )
    out = {}
    for split, part in rows.groupby(rows["split"].astype(str), sort=False):
        counts: dict[str, int] = {}
        for record in part.to_dict("records"):
            name = str(record["label"])
            if name in ("", ".", "..") or "/" in name or "\\" in name:
                raise CurateError(f"label {name!r} of sample {record['sample_id']} cannot be a folder name")
            placer.place(record, folder / split / name)
            counts[name] = counts.get(name, 0) + 1
        classes = sorted(counts)  # torchvision's find_classes: folder names sorted as text
        out[split] = {"class_to_idx": {c: i for i, c in enumerate(classes)}, "files": counts}
    return {"splits": out}



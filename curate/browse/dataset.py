"""Build a persistent FiftyOne dataset from a manifest, for browsing and review.

One dataset per manifest version, named ``name@version``. Each sample carries
``ground_truth`` (and ``suggested``, with the probe's probability, when labels were
checked), ``split``, ``patient_id``, ``side``, ``dup_group``, ``label_quality``, every
quality flag as a tag, and the manifest's ``sample_id``. Rebuilding keeps the tags
reviewers added (``exclude``, ``relabel:KL2``...): only the tags curate wrote are replaced.

FiftyOne is imported inside the functions: call :func:`curate.browse.db.import_fiftyone`
first, so the database is configured and checked.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from curate.browse.context import Context
from curate.browse.media import media_path
from curate.errors import CurateError

__all__ = ["dataset_name", "sample_records", "build_dataset", "GENERATED_TAGS_KEY"]

# dataset.info key listing the tags curate generated (the rest are reviewers').
GENERATED_TAGS_KEY = "curate_generated_tags"
_BATCH = 1000
_NAME_RE = re.compile(r"[^A-Za-z0-9._@-]+")
Progress = Callable[[str, int], Callable[[int], None]]


def dataset_name(card: dict) -> str:
    """``name@version`` with anything but letters, digits and ``._@-`` replaced by ``-``."""
    return _NAME_RE.sub("-", f"{card['name']}@{card['version']}").strip("-")


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _text(value: object) -> str | None:
    return None if _missing(value) else str(value)


def _label(value: object) -> str | None:
    """Label text as the manifest shows it: a grade 2 stays "2" even if a join made it 2.0."""
    if _missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: object) -> float | None:
    return None if _missing(value) else float(value)


def _by_id(table: pd.DataFrame | None) -> pd.DataFrame | None:
    if table is None or "sample_id" not in table.columns:
        return None
    table = table.drop_duplicates("sample_id")
    return table.set_index(table["sample_id"].astype(str))


def _flags(value: object) -> list[str]:
    return [f for f in str(value).split("|") if f] if not _missing(value) else []


def sample_records(rows: pd.DataFrame, context: Context | None = None) -> pd.DataFrame:
    """One record per sample to add: the manifest's rows, then the excluded samples if known.

    Columns: ``sample_id, path, sha256, crop, label, split, patient_id, side, weight,
    repeat, flags (list), dup_group, dup_keep, label_quality, is_label_issue,
    suggested_label, suggested_confidence, excluded, exclusion_reason``.
    """
    context = context or Context()
    records = rows.copy()
    records["excluded"] = False
    records["exclusion_reason"] = pd.Series(pd.NA, index=records.index, dtype="string")
    catalog = _by_id(context.catalog)
    selection = context.selection
    if selection is not None and catalog is not None and "exclusion_reason" in selection.columns:
        out = selection[~selection["selected"].astype(bool) & selection["exclusion_reason"].notna()]
        out = out[out["sample_id"].astype(str).isin(catalog.index)]
        if len(out):
            source = catalog.loc[out["sample_id"].astype(str)]
            extra = pd.DataFrame(
                {
                    "sample_id": out["sample_id"].astype(str).to_numpy(),
                    "path": source["path"].astype(str).to_numpy(),
                    "label": out["label"].to_numpy() if "label" in out.columns else source["label"].to_numpy(),
                    "split": out["split"].astype("string").to_numpy(),
                    "patient_id": source["patient_id"].astype("string").to_numpy(),
                    "excluded": True,
                    "exclusion_reason": out["exclusion_reason"].astype("string").to_numpy(),
                }
            )
            if "crop" in source.columns:
                extra["crop"] = source["crop"].astype("string").to_numpy()
            if "sha256" in source.columns:
                extra["sha256"] = source["sha256"].astype("string").to_numpy()
            records = pd.concat([records, extra], ignore_index=True)
    ids = records["sample_id"].astype(str)

    def column(table: pd.DataFrame | None, name: str) -> pd.Series | None:
        if table is None or name not in table.columns:
            return None
        return ids.map(table[name])

    def fill(into: str, values: pd.Series | None) -> None:
        """Keep what the manifest says; fill only its gaps from a side table."""
        if values is not None:
            records[into] = records[into].where(records[into].notna(), values) if into in records else values

    quality = _by_id(context.quality)
    if quality is not None:
        for name in ("flags", "dup_group", "dup_keep"):
            fill(name, column(quality, name))
        fill("sha256", column(quality, "file_sha256"))
    for name in ("side", "laterality"):
        values = column(catalog, name)
        if values is not None and "side" not in records:
            records["side"] = values
    labels = _by_id(context.labels)
    if labels is not None:
        for name in ("label_quality", "is_label_issue", "suggested_label"):
            fill(name, column(labels, name))
        # The probe's probability of the class it suggests: the App's confidence slider.
        if "suggested_label" in records:
            probs = {str(c)[5:]: c for c in labels.columns if str(c).startswith("prob_")}
            confidence = [
                _number(labels.at[i, probs[str(s)]]) if i in labels.index and not _missing(s) and str(s) in probs else None
                for i, s in zip(ids, records["suggested_label"])
            ]
            records["suggested_confidence"] = confidence
    for name in ("sha256", "crop", "side", "flags", "dup_group", "dup_keep", "label_quality", "is_label_issue",
                 "suggested_label", "suggested_confidence", "weight", "repeat"):
        if name not in records:
            records[name] = None
    records["flags"] = [_flags(v) for v in records["flags"]]
    return records.reset_index(drop=True)


def _existing_review_tags(fo, name: str) -> dict[str, list[str]]:
    """Tags reviewers put on an existing dataset of that name, by ``sample_id``."""
    if name not in fo.list_datasets():
        return {}
    old = fo.load_dataset(name)
    generated = set(old.info.get(GENERATED_TAGS_KEY, []))
    if "sample_id" not in old.get_field_schema():
        return {}
    ids, tags = old.values(["sample_id", "tags"])
    return {i: [t for t in tg if t not in generated] for i, tg in zip(ids, tags) if any(t not in generated for t in tg)}


def build_dataset(
    rows: pd.DataFrame,
    *,
    name: str | None = None,
    context: Context | None = None,
    media_dir: str | os.PathLike,
    progress: Progress | None = None,
):
    """Create (or rebuild, keeping reviewers' tags) the persistent dataset of a manifest.

    Parameters
    ----------
    rows : DataFrame
        The manifest, as :func:`curate.manifest.load_manifest` returns it (``attrs["card"]``
        gives the name, version and data root).
    name : str, optional
        Dataset name (default :func:`dataset_name` of the card).
    context : Context, optional
        Extra tables (:func:`curate.browse.context.find_context`).
    media_dir : path
        Where renderings of DICOM files and crops are cached.
    progress : callable, optional
        ``progress(description, total) -> advance(n)``.

    Returns
    -------
    fiftyone.core.dataset.Dataset
    """
    import fiftyone as fo
    from fiftyone import ViewField as F

    card = rows.attrs.get("card") or {}
    if "data_root" not in card:
        raise CurateError("the manifest has no card (load it with curate.manifest.load_manifest)")
    name = name or dataset_name(card)
    root = Path(card["data_root"])
    records = sample_records(rows, context)
    advance = progress("adding samples", len(records)) if progress else (lambda n=1: None)

    kept_tags = _existing_review_tags(fo, name)
    if name in fo.list_datasets():
        fo.delete_dataset(name)
    dataset = fo.Dataset(name, persistent=True)

    generated: set[str] = set()
    unrendered = 0
    batch = []
    for record in records.itertuples(index=False):
        source = Path(record.path) if os.path.isabs(str(record.path)) else root / str(record.path)
        filepath, shown = media_path(source, _text(record.sha256) or "unknown", record.crop, media_dir)
        unrendered += not shown
        tags = list(record.flags)
        if not _missing(record.is_label_issue) and bool(record.is_label_issue):
            tags.append("label_issue")
        if record.excluded:
            tags.append("excluded")
        generated.update(tags)
        tags += [t for t in kept_tags.get(str(record.sample_id), []) if t not in tags]
        sample = fo.Sample(
            filepath=filepath,
            tags=tags,
            sample_id=str(record.sample_id),
            source_path=str(record.path),
            sha256=_text(record.sha256),
            crop=_text(record.crop),
            split=_text(record.split),
            patient_id=_text(record.patient_id),
            side=_text(record.side),
            weight=_number(record.weight),
            repeat=None if _missing(record.repeat) else int(record.repeat),
            dup_group=_text(record.dup_group),
            dup_keep=None if _missing(record.dup_keep) else bool(record.dup_keep),
            label_quality=_number(record.label_quality),
            is_label_issue=None if _missing(record.is_label_issue) else bool(record.is_label_issue),
            excluded=bool(record.excluded),
            exclusion_reason=_text(record.exclusion_reason),
        )
        if not _missing(record.label):
            sample["ground_truth"] = fo.Classification(label=_label(record.label))
        if not _missing(record.suggested_label):
            sample["suggested"] = fo.Classification(
                label=_label(record.suggested_label), confidence=_number(record.suggested_confidence)
            )
        batch.append(sample)
        if len(batch) >= _BATCH:
            dataset.add_samples(batch, progress=False)
            advance(len(batch))
            batch = []
    if batch:
        dataset.add_samples(batch, progress=False)
        advance(len(batch))

    dataset.info = {
        "manifest": f"{card['name']}@{card['version']}",
        "data_root": str(root),
        "recipe_sha256": card.get("recipe_sha256"),
        GENERATED_TAGS_KEY: sorted(generated),
        "unrendered": int(unrendered),
    }
    _save_views(dataset, F, records)
    dataset.save()
    return dataset


def _save_views(dataset, F, records: pd.DataFrame) -> None:
    kept = F("excluded") != True  # noqa: E712 (a ViewExpression, not a Python comparison)
    if records["is_label_issue"].notna().any():
        dataset.save_view("label issues", dataset.match(F("is_label_issue") == True).sort_by("label_quality"))  # noqa: E712
    if records["dup_group"].notna().any():
        dataset.save_view("near duplicates", dataset.exists("dup_group").sort_by("dup_group"))
    if records["excluded"].any():
        dataset.save_view("excluded", dataset.match(F("excluded") == True))  # noqa: E712
    for split in records.loc[~records["excluded"].astype(bool), "split"].dropna().astype(str).unique():
        dataset.save_view(split, dataset.match(kept & (F("split") == split)))

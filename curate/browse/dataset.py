"""Build a persistent FiftyOne dataset from a manifest, for browsing and review.

One dataset per manifest version, named ``name@version``. Each sample carries
``ground_truth`` (and ``suggested``, with the probe's probability, when labels were
checked), ``split``, ``patient_id``, ``side``, ``dup_group``, ``label_quality``, the
image ``metadata``, every quality flag as a tag (shown on the grid's tiles), and the
manifest's ``sample_id``.

Building again updates that dataset in place, matching samples by ``sample_id`` and
writing only what changed. What reviewers made in the App therefore stays: their tags
on samples and on unchanged labels (``exclude``, ``relabel:KL2``...), their saved views
(which may select samples by id), workspaces, fields of their own and App settings.
Only what curate made before (``dataset.info`` lists its tags and saved views) is replaced.

FiftyOne is imported inside the functions: call :func:`curate.browse.db.import_fiftyone`
first, so the database is configured and checked.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from curate.browse.context import Context
from curate.browse.media import media_path
from curate.errors import CurateError

__all__ = ["dataset_name", "sample_records", "build_dataset", "GENERATED_TAGS_KEY", "SAVED_VIEWS_KEY"]

# dataset.info keys listing the tags and saved views curate made (the rest are reviewers').
GENERATED_TAGS_KEY = "curate_generated_tags"
SAVED_VIEWS_KEY = "curate_saved_views"
VIEW_DESCRIPTION = "made by curate browse, remade on every build (save a copy under another name to change it)"
# Fields curate writes, by FiftyOne field class; declared up front, so a field that is empty
# today still has its type when a later build fills it.
_SCALARS = {
    "source_path": "StringField", "sha256": "StringField", "crop": "StringField", "split": "StringField",
    "patient_id": "StringField", "side": "StringField", "weight": "FloatField", "repeat": "IntField",
    "dup_group": "StringField", "dup_keep": "BooleanField", "label_quality": "FloatField",
    "is_label_issue": "BooleanField", "excluded": "BooleanField", "exclusion_reason": "StringField",
}
_LABELS = ("ground_truth", "suggested")
FLAGS_FIELD = "flags"  # the quality flags as labels, drawn on the App's tiles
# Embedded documents, by the paths compared to decide whether to rewrite them: a label whose
# text is unchanged is left alone, with its id and the tags reviewers put on it.
_DOCUMENTS = {
    "metadata": ("metadata.size_bytes", "metadata.mime_type", "metadata.width", "metadata.height",
                 "metadata.num_channels"),
    "ground_truth": ("ground_truth.label",),
    "suggested": ("suggested.label", "suggested.confidence"),
}
_COMPARED = ("filepath", *_SCALARS, *(path for paths in _DOCUMENTS.values() for path in paths))
_LEGACY_VIEWS = frozenset({"label issues", "near duplicates", "excluded"})
_BATCH = 1000
_NAME_RE = re.compile(r"[^A-Za-z0-9._@-]+")
Progress = Callable[[str, int], Callable[[int], None]]
Values = dict[str, object]


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


def build_dataset(
    rows: pd.DataFrame,
    *,
    name: str | None = None,
    context: Context | None = None,
    media_dir: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    progress: Progress | None = None,
):
    """Create, or update in place, the persistent dataset of a manifest.

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
        Where renderings of the files a browser would show wrongly are cached.
    data_root : path, optional
        Where the images are now (default: the data root recorded in the manifest).
    progress : callable, optional
        ``progress(description, total) -> advance(n)``.

    Returns
    -------
    fiftyone.core.dataset.Dataset

    Raises
    ------
    CurateError
        The data root is not a folder, or a dataset of that name exists and was not
        made by curate.
    """
    import fiftyone as fo

    card = rows.attrs.get("card") or {}
    if "data_root" not in card:
        raise CurateError("the manifest has no card (load it with curate.manifest.load_manifest)")
    name = name or dataset_name(card)
    records = sample_records(rows, context)
    root = _data_root(data_root if data_root is not None else card["data_root"], records["path"], data_root is None)
    dataset = _open_dataset(fo, name)  # before rendering: a name taken by another dataset fails at once
    advance = progress("adding samples", len(records)) if progress else (lambda n=1: None)
    wanted, unrendered = _sample_values(fo, records, root, media_dir, advance)

    before = dict(dataset.info)
    _declare_fields(fo, dataset)
    flags = {sample_id: list(values["tags"]) for sample_id, values in wanted.items()}
    generated = _sync_samples(fo, dataset, wanted, set(before.get(GENERATED_TAGS_KEY, [])))
    _set_flag_labels(fo, dataset, flags)
    views = _save_views(dataset, _curate_views(dataset, records), before.get(SAVED_VIEWS_KEY))
    _show_tags_on_tiles(fo, dataset)
    dataset.info.update({
        "manifest": f"{card['name']}@{card['version']}",
        "data_root": str(root),
        "recipe_sha256": card.get("recipe_sha256"),
        GENERATED_TAGS_KEY: sorted(generated),
        SAVED_VIEWS_KEY: views,
        "unrendered": int(unrendered),
    })
    dataset.save()
    return dataset


def _data_root(root: str | os.PathLike, paths: pd.Series, recorded: bool) -> Path:
    """The folder relative paths start from (absolute, as FiftyOne stores file paths)."""
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.is_dir() and not all(os.path.isabs(str(p)) for p in paths):
        where = "recorded in the manifest" if recorded else "given"
        raise CurateError(f"data root {root} ({where}) is not a folder (give --data-root where the images are now)")
    return root


def _sample_values(fo, records: pd.DataFrame, root: Path, media_dir, advance) -> tuple[dict[str, Values], int]:
    """What each sample should hold, by ``sample_id``, and how many files could not be shown.

    Embedded documents appear as their compared paths (``ground_truth.label``...).
    """
    wanted: dict[str, Values] = {}
    unrendered = reported = 0
    for i, record in enumerate(records.itertuples(index=False), start=1):
        source = Path(record.path) if os.path.isabs(str(record.path)) else root / str(record.path)
        filepath, shown = media_path(source, _text(record.sha256), record.crop, media_dir)
        unrendered += not shown
        has_suggestion = not _missing(record.suggested_label)
        wanted[str(record.sample_id)] = {
            "filepath": filepath,
            "tags": _generated_tags(record),
            "source_path": str(record.path),
            "sha256": _text(record.sha256),
            "crop": _text(record.crop),
            "split": _text(record.split),
            "patient_id": _text(record.patient_id),
            "side": _text(record.side),
            "weight": _number(record.weight),
            "repeat": None if _missing(record.repeat) else int(record.repeat),
            "dup_group": _text(record.dup_group),
            "dup_keep": None if _missing(record.dup_keep) else bool(record.dup_keep),
            "label_quality": _number(record.label_quality),
            "is_label_issue": None if _missing(record.is_label_issue) else bool(record.is_label_issue),
            "excluded": bool(record.excluded),
            "exclusion_reason": _text(record.exclusion_reason),
            **_metadata(fo, filepath if shown else None),
            "ground_truth.label": _label(record.label),
            "suggested.label": _label(record.suggested_label),
            "suggested.confidence": _number(record.suggested_confidence) if has_suggestion else None,
        }
        if i % 100 == 0 or i == len(records):  # a progress update per file would cost more than a header read
            advance(i - reported)
            reported = i
    return wanted, unrendered


def _generated_tags(record) -> list[str]:
    tags = list(record.flags)
    if not _missing(record.is_label_issue) and bool(record.is_label_issue):
        tags.append("label_issue")
    if record.excluded:
        tags.append("excluded")
    return tags


def _metadata(fo, filepath: str | None) -> Values:
    """The image metadata FiftyOne would compute for ``filepath`` (header only), as paths."""
    try:
        metadata = fo.ImageMetadata.build_for(filepath) if filepath else None
    except Exception:  # a file that went missing or that Pillow cannot size: no metadata, as FiftyOne
        metadata = None
    paths = _DOCUMENTS["metadata"]
    return {path: None if metadata is None else getattr(metadata, path.split(".")[1]) for path in paths}


def _open_dataset(fo, name: str):
    """The existing dataset of that name (if curate made it) or a new persistent one."""
    if name not in fo.list_datasets():
        return fo.Dataset(name, persistent=True)
    dataset = fo.load_dataset(name)
    if len(dataset) and "sample_id" not in dataset.get_field_schema():
        raise CurateError(f"FiftyOne dataset {name!r} was not made by `curate browse`: pass another --dataset-name")
    dataset.persistent = True
    return dataset


def _set_flag_labels(fo, dataset, flags: dict[str, list[str]]) -> None:
    """Each sample's quality flags as a ``flags`` label field, which the App draws on every tile.

    Sample tags hold the same names (reviewers filter and tag by them), but the App
    starts with its tag checkboxes off whatever the dataset's app config says; label
    fields start on.
    """
    ids = dict(zip(*dataset.values(["sample_id", "id"])))
    labels = {
        ids[sample_id]: fo.Classifications(classifications=[fo.Classification(label=name) for name in names])
        for sample_id, names in flags.items() if sample_id in ids
    }
    dataset.set_values(FLAGS_FIELD, labels, key_field="id")


def _declare_fields(fo, dataset) -> None:
    schema = dataset.get_field_schema()
    for name, kind in {"sample_id": "StringField", **_SCALARS}.items():
        if name not in schema:
            dataset.add_sample_field(name, getattr(fo, kind))
    for name in _LABELS:
        if name not in schema:
            dataset.add_sample_field(name, fo.EmbeddedDocumentField, embedded_doc_type=fo.Classification)
    if FLAGS_FIELD not in schema:
        dataset.add_sample_field(FLAGS_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Classifications)


def _current_values(dataset) -> dict[str, Values]:
    """What each sample holds now, by ``sample_id`` (with its FiftyOne ``id`` and tags)."""
    if not len(dataset):
        return {}
    paths = ["sample_id", "id", "tags", *_COMPARED]
    columns = dataset.values(paths)
    return {row[0]: dict(zip(paths, row)) for row in zip(*columns)}


def _sync_samples(fo, dataset, wanted: dict[str, Values], generated_before: set[str]) -> set[str]:
    """Delete, add and update samples so that the dataset holds ``wanted``; return curate's tags.

    A sample's tags become curate's new ones plus those reviewers added (every tag
    that is not in ``generated_before``).
    """
    current = _current_values(dataset)
    generated: set[str] = set()
    for sample_id, values in wanted.items():
        generated.update(values["tags"])
        old_tags = current[sample_id]["tags"] if sample_id in current else []
        values["tags"] = _merged_tags(values["tags"], old_tags, generated_before)
    gone = [current[i]["id"] for i in current.keys() - wanted.keys()]
    if gone:
        dataset.delete_samples(gone)
    new = [_sample(fo, values, sample_id) for sample_id, values in wanted.items() if sample_id not in current]
    for start in range(0, len(new), _BATCH):
        dataset.add_samples(new[start : start + _BATCH], progress=False)
    _update_changed(fo, dataset, {i: v for i, v in wanted.items() if i in current}, current)
    return generated


def _merged_tags(ours: list[str], old: Iterable[str], generated_before: set[str]) -> list[str]:
    reviewers = [t for t in old or [] if t not in generated_before and t not in ours]
    return [*ours, *reviewers]


def _sample(fo, values: Values, sample_id: str):
    sample = fo.Sample(filepath=values["filepath"], tags=values["tags"], sample_id=sample_id,
                       **{name: values[name] for name in _SCALARS})
    for field in _DOCUMENTS:
        document = _document(fo, field, values)
        if document is not None:
            sample[field] = document
    return sample


def _document(fo, field: str, values: Values):
    """The embedded document ``field`` of a sample's ``values`` (None when there is none)."""
    if field == "metadata":
        parts = {path.split(".")[1]: values[path] for path in _DOCUMENTS["metadata"]}
        return None if parts["size_bytes"] is None else fo.ImageMetadata(**parts)
    label = values[f"{field}.label"]
    if label is None:
        return None
    if field == "suggested":
        return fo.Classification(label=label, confidence=values["suggested.confidence"])
    return fo.Classification(label=label)


def _update_changed(fo, dataset, wanted: dict[str, Values], current: dict[str, Values]) -> None:
    """Write, field by field, only the values that differ from what the samples hold."""
    def changed(paths: Iterable[str]) -> list[str]:
        return [i for i, values in wanted.items() if any(not _same(values[p], current[i][p]) for p in paths)]

    for field in ("filepath", "tags", *_SCALARS):
        ids = changed([field])
        if ids:
            dataset.set_values(field, {current[i]["id"]: wanted[i][field] for i in ids}, key_field="id")
    for field, paths in _DOCUMENTS.items():
        ids = changed(paths)
        if ids:
            documents = {current[i]["id"]: _document(fo, field, wanted[i]) for i in ids}
            dataset.set_values(field, documents, key_field="id")


def _same(new: object, old: object) -> bool:
    if _missing(new) or _missing(old):
        return _missing(new) and _missing(old)
    return new == old


def _curate_views(dataset, records: pd.DataFrame) -> dict:
    """The saved views curate makes: label issues, near duplicates, excluded samples, each split."""
    from fiftyone import ViewField as F

    views = {}
    kept = F("excluded") != True  # noqa: E712 (a ViewExpression, not a Python comparison)
    if records["is_label_issue"].notna().any():
        views["label issues"] = dataset.match(F("is_label_issue") == True).sort_by("label_quality")  # noqa: E712
    if records["dup_group"].notna().any():
        views["near duplicates"] = dataset.exists("dup_group").sort_by("dup_group")
    if records["excluded"].any():
        views["excluded"] = dataset.match(F("excluded") == True)  # noqa: E712
    for split in records.loc[~records["excluded"].astype(bool), "split"].dropna().astype(str).unique():
        views[split] = dataset.match(kept & (F("split") == split))
    return views


def _save_views(dataset, views: dict, previous: list[str] | None) -> list[str]:
    """Save curate's views, delete those it made before and no longer makes, keep everyone else's.

    Returns
    -------
    list of str
        The names saved. A reviewer's view that has one of curate's names wins over it.
    """
    existing = set(dataset.list_saved_views())
    # Datasets built before curate recorded its views: its names then were these.
    ours = set(previous) if previous is not None else existing & (_LEGACY_VIEWS | set(views))
    for name in sorted((ours & existing) - set(views)):
        dataset.delete_saved_view(name)
    saved = []
    for name, view in views.items():
        if name in existing and name not in ours:
            continue
        dataset.save_view(name, view, description=VIEW_DESCRIPTION, overwrite=True)
        saved.append(name)
    return saved


def _show_tags_on_tiles(fo, dataset) -> None:
    """Show the labels and the quality flags on the grid's tiles, unless someone chose otherwise.

    The sidebar's checkboxes start from ``app_config.active_fields`` when it is set
    (checked in headless Chromium: the tag checkboxes ignore it, hence the ``flags`` labels).
    """
    if dataset.app_config.active_fields is None:
        dataset.app_config.active_fields = fo.ActiveFields(paths=[*_LABELS, FLAGS_FIELD])

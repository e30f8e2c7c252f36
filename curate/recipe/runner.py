"""Run a checked recipe: ingest -> task -> scan -> labels -> select -> manifest -> exports.

Intermediate tables go to a work folder (default ``.curate/work`` beside the manifest
store's parent, i.e. ``./.curate/work`` for the default store ``./manifests``)::

    WORK/catalog/<key>/catalog.parquet    the catalog (after the task), key: loader, options, root, task, rows
    WORK/scan/<key>/quality.parquet       key: scan version + catalog key + files' size/mtime + thresholds
    WORK/labels/<key>/labels.parquet      key: feature and probe versions + scan key + folds, classifier, seed, features file
    WORK/runs/<recipe name>/selection.parquet

A stage whose key folder exists is reused, so a second recipe on the same data (or the
same recipe again) does not scan again; the scan also keeps its own cache by file content.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate._io import sha256_file
from curate.errors import CurateError
from curate.recipe.schema import Recipe, RecipeError

__all__ = ["run_recipe", "check_data_root", "default_work", "recorded_recipe"]

_WORK_ENV = "CURATE_WORK_DIR"


def default_work(store: str | os.PathLike | None = None) -> Path:
    """``$CURATE_WORK_DIR``, else ``.curate/work`` in the folder that holds the store."""
    if os.environ.get(_WORK_ENV):
        return Path(os.environ[_WORK_ENV])
    from curate.manifest import default_store

    store_path = Path(store) if store is not None else default_store()
    return store_path.resolve().parent / ".curate" / "work"


def find_work_catalog(card: dict, store: str | os.PathLike | None = None, work: str | os.PathLike | None = None):
    """The catalog a manifest was made from, found in the work folder by its fingerprint (None if absent).

    A de-identified manifest names its files only there; browsing uses it for the
    side, duplicates and excluded samples.
    """
    from curate.catalog import read_catalog
    from curate.select.frozen import catalog_fingerprint

    folder = Path(work) if work is not None else default_work(store)
    for path in sorted(folder.glob("catalog/*/catalog.parquet")):
        try:
            catalog = read_catalog(path)
        except Exception:  # a stale or foreign file: not ours to diagnose
            continue
        if catalog_fingerprint(catalog) == card.get("catalog_fingerprint"):
            return catalog
    return None


def private_catalog(manifest, store: str | os.PathLike | None = None, given: str | os.PathLike | None = None):
    """The private catalog a de-identified ``manifest`` needs to find its files (None for any other).

    ``given`` (a catalog file) wins; else the work folder's catalog with the manifest's fingerprint.
    """
    if not manifest.card.get("deid"):
        return None
    from curate.catalog import read_catalog

    return read_catalog(given) if given else find_work_catalog(manifest.card, store)


def _key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _path(template: str | None, **values: str) -> Path | None:
    """A recipe path with ``{work}``, ``{name}``, ``{data_root}`` (and ``{version}``) filled in."""
    if template is None:
        return None
    try:
        return Path(template.format(**values))
    except (KeyError, IndexError, ValueError) as exc:
        raise CurateError(f"path {template!r}: unknown placeholder {exc}; use {{work}}, {{name}}, {{data_root}}") from None


def recorded_recipe(recipe: Recipe) -> dict:
    """The recipe as the card records it: everything but the data root (the card's ``data_root``).

    Leaving the root out keeps the version id the same on every machine.
    """
    data = copy.deepcopy(recipe.data)
    data["source"].pop("data_root", None)
    if data.get("deid", {}).get("enabled"):
        _withhold_paths(data)
    return data


_WITHHELD = "(path withheld: de-identified)"


def _withhold_paths(data: dict) -> None:
    """A de-identified card names no path: where the key, the exports and the inputs are stays local."""
    data["deid"]["key_file"] = _WITHHELD
    for section, key in (("split", "frozen"), ("split", "freeze"), ("labels", "embeddings"), ("labels", "pred_probs")):
        if data.get(section, {}).get(key) is not None:
            data[section][key] = _WITHHELD
    if data.get("review") is not None:
        data["review"] = _WITHHELD
    for item in data.get("exports", []):
        item["output"] = _WITHHELD
    options = data["source"].get("options") or {}
    for key, value in options.items():
        if isinstance(value, str) and (os.sep in value or value.startswith("~")):
            options[key] = _WITHHELD


def _files_fingerprint(catalog, root: Path) -> str:
    """sha256 over every file's (path, size, mtime): a changed file invalidates the cached scan."""
    digest = hashlib.sha256()
    for rel in sorted(set(catalog["path"].astype(str))):
        try:
            st = os.stat(root / rel)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{rel}\0missing\n".encode())
    return digest.hexdigest()


def check_data_root(recipe: Recipe) -> Path:
    """The recipe's data root, refused (naming the recipe's line) when it does not exist."""
    root = Path(recipe.data["source"]["data_root"]).expanduser()
    if not root.exists():
        raise RecipeError(f"{recipe.where('source.data_root')}: data root {root} does not exist (pass --data-root)")
    return root


def _check_inputs(recipe: Recipe, root: Path, places: dict[str, str]) -> None:
    """Refuse missing inputs before any work."""
    data = recipe.data
    check_data_root(recipe)
    frozen = _path(data["split"]["frozen"], **places)
    if frozen is not None and not frozen.is_file():
        raise RecipeError(f"{recipe.where('split.frozen')}: frozen split {frozen} does not exist")
    if data["deid"]["enabled"]:
        from curate.deid import read_key

        try:
            read_key(_path(data["deid"]["key_file"], **places))
        except CurateError as exc:
            raise RecipeError(f"{recipe.where('deid.key_file')}: {exc}") from None
    for key in ("embeddings", "pred_probs"):
        given = _path(data["labels"][key], **places)
        if data["labels"]["enabled"] and given is not None and not given.is_file():
            raise RecipeError(f"{recipe.where('labels.' + key)}: {given} does not exist")


def run_recipe(
    recipe: Recipe,
    *,
    store: str | os.PathLike | None = None,
    work: str | os.PathLike | None = None,
    report: Callable[[dict], None] | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> dict:
    """Run ``recipe`` and store its manifest; return a summary of every stage.

    Parameters
    ----------
    recipe : Recipe
        From :func:`curate.recipe.load_recipe`.
    store : path, optional
        Manifest store (default :func:`curate.manifest.default_store`).
    work : path, optional
        Work folder for intermediate tables (default :func:`default_work`).
    report : callable, optional
        Called with each stage's summary as soon as the stage is done.
    progress : callable, optional
        ``progress(description, total) -> advance(n)`` for the long stages (scan, features).

    Returns
    -------
    dict
        ``name``, ``version``, ``ref``, ``new_version``, ``parent``, ``stages`` (a list of summaries).
    """
    from curate.manifest import name_lock

    data = recipe.data
    work = Path(work) if work is not None else default_work(store)
    root = Path(data["source"]["data_root"]).expanduser()
    places = {"work": str(work), "name": data["name"], "data_root": str(root)}
    _check_inputs(recipe, root, places)
    _check_outputs(recipe, places)
    stages: list[dict] = []

    def done(stage: dict) -> None:
        stages.append(stage)
        if report is not None:
            report(stage)

    def wait(message: str) -> None:
        done({"stage": "wait", "message": message, "reused": False, "seconds": 0.0})

    # Runs of one name take turns: their work files, version and exports would otherwise mix.
    with name_lock(data["name"], store, on_wait=wait):
        return _run_locked(recipe, store=store, work=work, root=root, places=places, done=done, stages=stages,
                           progress=progress)


def _run_locked(recipe: Recipe, *, store, work: Path, root: Path, places: dict, done, stages: list, progress) -> dict:
    """The stages of :func:`run_recipe`, run while the name's lock is held."""
    from curate.catalog import write_catalog
    from curate.loaders import load
    from curate.manifest import build_manifest, versions, write_manifest
    from curate.quality.rules import Thresholds
    from curate.select.frozen import catalog_fingerprint

    data = recipe.data

    # Ingest always runs (it lists files; cheap), so a changed folder is never missed.
    start = time.perf_counter()
    result = load(data["source"]["loader"], root, **data["source"]["options"])
    catalog, problems = result.catalog, result.problems
    left_out = 0
    if data["task"] is not None:
        from curate.tasks import Task, apply_task

        attrs = dict(catalog.attrs)
        catalog, task_problems = apply_task(catalog, Task.from_dict(data["task"]))
        catalog.attrs.update(attrs)
        left_out = len(task_problems)
    if catalog.empty:
        raise CurateError(f"{recipe.where('source')}: the source gives no samples")
    deid_record = None
    if data["deid"]["enabled"]:
        from curate.deid import Deid, deidentify_catalog, read_key

        cfg = data["deid"]
        deid = Deid(read_key(_path(cfg["key_file"], **places)), dates=cfg["dates"], keep=tuple(cfg["keep"]))
        catalog, _ = deidentify_catalog(catalog, deid)
        deid_record = deid.record()
    data_root = Path(result.data_root).resolve()
    catalog_key = _key("catalog", data["source"]["loader"], data["source"]["options"], str(data_root),
                       data["task"], deid_record, catalog_fingerprint(catalog))
    catalog_path = work / "catalog" / catalog_key / "catalog.parquet"
    reused = catalog_path.is_file()
    if not reused:
        write_catalog(catalog, catalog_path, data_root)
    done({"stage": "ingest", "samples": len(catalog), "problems": len(problems), "left_out_by_task": left_out,
          "output": str(catalog_path), "reused": False, "catalog_cached": reused, "seconds": round(time.perf_counter() - start, 2)})

    quality_path = None
    scan_key = _key("no-scan", catalog_key)
    if data["scan"]["enabled"]:
        from curate.quality.io import read_quality_summary, scan_to_file

        start = time.perf_counter()
        thresholds = Thresholds.from_dict(data["scan"]["thresholds"]).to_dict()
        from curate.quality.duplicates import KEEP_RULE_VERSION
        from curate.quality.measures import SCAN_VERSION

        # the versions keep a newer curate from reusing an older scan of unchanged files
        scan_key = _key("scan", SCAN_VERSION, KEEP_RULE_VERSION, catalog_key, _files_fingerprint(catalog, data_root), thresholds)
        quality_path = work / "scan" / scan_key / "quality.parquet"
        reused = quality_path.is_file()
        if reused:
            summary = read_quality_summary(quality_path, catalog_path)
        else:
            summary = scan_to_file(
                catalog_path, quality_path, workers=data["scan"]["workers"], thresholds=thresholds, progress=progress
            )
        done({"stage": "scan", **_flagged(summary), "output": str(quality_path), "reused": reused,
              "seconds": round(time.perf_counter() - start, 2)})

    labels_path = None
    if data["labels"]["enabled"]:
        from curate.labels.io import labels_to_file

        start = time.perf_counter()
        cfg = data["labels"]
        files = {k: _path(cfg[k], **places) for k in ("embeddings", "pred_probs")}
        hashes = {k: sha256_file(p) if p is not None else None for k, p in files.items()}
        from curate.labels.features import FEATURE_VERSION
        from curate.labels.ordinal import PROBE_VERSION

        labels_key = _key("labels", FEATURE_VERSION, PROBE_VERSION, scan_key, cfg["folds"], cfg["classifier"], data["seed"], hashes)
        labels_path = work / "labels" / labels_key / "labels.parquet"
        reused = labels_path.is_file()
        if not reused:
            labels_to_file(catalog_path, labels_path, quality_path=quality_path, n_splits=cfg["folds"],
                           classifier=cfg["classifier"], seed=data["seed"], progress=progress, **files)
        from curate.labels.io import read_labels_table

        issues = int(read_labels_table(labels_path)["is_label_issue"].fillna(False).astype(bool).sum())
        done({"stage": "labels", "issues": issues, "output": str(labels_path), "reused": reused,
              "seconds": round(time.perf_counter() - start, 2)})

    from curate.select.io import read_selection, select_to_file

    reviewed_out: list[str] = []
    recorded = recorded_recipe(recipe)
    if data.get("review"):
        catalog_path, reviewed_out, review_sha = _apply_review(_path(data["review"], **places), catalog_path, work)
        # the human decisions are part of how the set was made: their hash goes in the card
        recorded["review_sha256"] = review_sha
        done({"stage": "review", "file": data["review"], "sha256": review_sha, "excluded": len(reviewed_out),
              "output": str(catalog_path), "reused": False, "seconds": 0.0})

    start = time.perf_counter()
    split, sampler, exclude = data["split"], data["sampler"], data["exclude"]
    # keyed by everything that makes the selection: two runs of one name never share the file
    run_key = _key("run", recorded, catalog_key, scan_key, str(labels_path), str(data_root))
    selection_path = work / "runs" / data["name"] / run_key / "selection.parquet"
    select_report = select_to_file(
        catalog_path,
        selection_path,
        quality=quality_path,
        labels=labels_path,
        split=None if split["method"] == "frozen" else split["method"],
        fractions=split["fractions"] and ",".join(map(str, split["fractions"])),
        split_seed=split["seed"],
        frozen_split=_path(split["frozen"], **places),
        freeze_split=_path(split["freeze"], **places),
        sampler=sampler["name"],
        n=sampler["n"],
        per_class=sampler["per_class"],
        short=sampler["short"],
        strategy=sampler["strategy"],
        weighting=sampler["weighting"],
        beta=sampler["beta"],
        exclude=exclude["add"],
        keep=exclude["keep"],
        min_grade_distance=exclude["min_grade_distance"],
        seed=data["seed"],
        reviewed_out=reviewed_out,
    )
    selection = read_selection(selection_path)
    chosen = selection[selection["selected"].astype(bool)]
    done({"stage": "select", "selected": chosen["split"].astype(str).value_counts().sort_index().to_dict(),
          "excluded": int(selection["exclusion_reason"].notna().sum()),
          "frozen_split": select_report.get("frozen_split"), "notes": list(selection.attrs.get("selection", {}).get("notes") or []),
          "output": str(selection_path), "reused": False,
          "seconds": round(time.perf_counter() - start, 2)})

    from curate.catalog import read_catalog
    from curate.labels.io import read_labels_table
    from curate.quality.io import read_quality

    start = time.perf_counter()
    manifest = build_manifest(
        read_catalog(catalog_path),
        selection,
        name=data["name"],
        recipe=recorded,
        quality=read_quality(quality_path) if quality_path is not None else None,
        labels=read_labels_table(labels_path) if labels_path is not None else None,
    )
    new_version = manifest.version not in versions(data["name"], store)
    manifest = write_manifest(manifest, store)
    done({"stage": "manifest", "ref": manifest.ref, "new_version": new_version, "parent": manifest.card.get("parent"),
          "samples": manifest.card["samples"], "rows": manifest.card["rows"], "reused": not new_version,
          "seconds": round(time.perf_counter() - start, 2)})

    sources = read_catalog(catalog_path) if manifest.card.get("deid") else None
    for item in data["exports"]:
        done(_export(manifest, item, {**places, "version": manifest.version}, sources))

    return {"name": manifest.name, "version": manifest.version, "ref": manifest.ref, "new_version": new_version,
            "parent": manifest.card.get("parent"), "stages": stages}


def _export_record(output: Path) -> dict:
    """The ``curate_export.json`` of an export folder ({} when there is none or it cannot be read)."""
    try:
        record = json.loads((output / "curate_export.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _check_outputs(recipe: Recipe, places: dict[str, str]) -> None:
    """Refuse, before any work, outputs that would overwrite what this recipe did not write."""
    from curate.select.frozen import is_frozen_split

    freeze = _path(recipe.data["split"]["freeze"], **places)
    if freeze is not None and (freeze.exists() or freeze.is_symlink()) and not is_frozen_split(freeze):
        raise RecipeError(f"{recipe.where('split.freeze')}: {freeze} exists and is not a frozen split; not overwritten")
    for i, item in enumerate(recipe.data["exports"]):
        try:
            output = _path(item["output"], **{**places, "version": "0" * 16})
        except CurateError as exc:
            raise RecipeError(f"{recipe.where(f'exports[{i}]')}: exports[{i}].output: {exc}") from None
        if "{version}" in item["output"] or not output.exists():
            continue
        mine = _export_record(output).get("manifest") == recipe.data["name"]
        if not mine and (not output.is_dir() or any(output.iterdir())):
            raise RecipeError(
                f"{recipe.where(f'exports[{i}]')}: exports[{i}].output {output} exists and is not an export of "
                f"{recipe.data['name']}; give a new folder (e.g. with {{version}} in it)"
            )


def _apply_review(review_path: Path, catalog_path: Path, work: Path) -> tuple[Path, list[str], str]:
    """Relabel the catalog as reviewed (written under its own key) and list the samples reviewers excluded."""
    from curate.browse.review import apply_review, read_review, review_sha256
    from curate.catalog import read_catalog, write_catalog

    sha = review_sha256(review_path)
    catalog = read_catalog(catalog_path)
    relabelled, excluded = apply_review(catalog, read_review(review_path))
    reviewed_path = work / "catalog" / _key("reviewed", catalog_path.parent.name, sha) / "catalog.parquet"
    if not reviewed_path.is_file():
        write_catalog(relabelled, reviewed_path, catalog.attrs["data_root"])
    return reviewed_path, excluded, sha


def _flagged(summary: dict) -> dict:
    """The scan summary in brief: readable images, count per flag, redundant duplicates."""
    return {
        "samples": summary.get("samples"),
        "readable": summary.get("readable"),
        "flags": {name: value["count"] for name, value in summary.get("flags", {}).items()},
        "redundant_duplicates": summary.get("duplicates", {}).get("redundant_samples"),
    }


def _export(manifest, item: dict, places: dict[str, str], sources=None) -> dict:
    """Export once per version and preprocessing: an output already holding that export is kept."""
    from curate.export import export_manifest
    from curate.recipe.schema import PREPROCESSING_KEYS
    from curate.rendering import Preprocessing

    start = time.perf_counter()
    output = _path(item["output"], **places)
    preprocessing = Preprocessing.from_dict({k: item[k] for k in PREPROCESSING_KEYS})
    record = _export_record(output)
    if (record.get("ref"), record.get("format"), record.get("pixels_id")) == (
        manifest.ref, item["format"], preprocessing.pixels_id
    ):
        return {"stage": "export", "format": item["format"], "output": str(output), "reused": True, "seconds": 0.0}
    if record.get("manifest") == manifest.name:
        # an earlier export of this recipe at a fixed path (no {version} in it): replaced by this
        # version's, as a rerun should; the store can always export the older version again
        shutil.rmtree(output)
    export_manifest(manifest, item["format"], output, link=item["link"], question=item["question"],
                    answer=item["answer"], preprocessing=preprocessing, catalog=sources)
    return {"stage": "export", "format": item["format"], "output": str(output), "reused": False,
            "seconds": round(time.perf_counter() - start, 2)}

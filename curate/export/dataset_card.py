"""What the published-dataset exports (``hf-imagefolder``, ``croissant``) say about a manifest.

Class names, license, citation, a description and the provenance come from the
manifest card; :func:`hf_dataset_card` writes them as a Hugging Face dataset card
(``README.md``: YAML front matter, then Markdown).

Class names are the manifest's own labels as text (``"0"`` ... ``"4"`` for KL
grades), in reading order (numbers numerically, then text). Prefer the
selection's class list (every class of the catalog) so that two manifests of one
catalog number their classes alike even when one of them lacks a class. With
integer labels ``0 .. K-1`` a class's index is then the label itself.

License and citation are read from the card (``license``, ``citation``) or its
recipe; when neither has one the license is ``"unknown"`` (a value the Hugging
Face Hub accepts) and no citation is written: curate never guesses either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

from curate.select._labels import class_order, label_text

__all__ = [
    "UNKNOWN_LICENSE",
    "manifest_classes",
    "license_of",
    "citation_of",
    "description_of",
    "provenance",
    "hf_dataset_card",
]

UNKNOWN_LICENSE = "unknown"


def manifest_classes(manifest) -> list[str]:
    """The class names, in reading order: the selection's classes plus any other label of the rows."""
    labels = set(label_text(manifest.rows["label"]).dropna())
    recorded = (manifest.card.get("selection") or {}).get("classes") or []
    return class_order(labels | {str(c) for c in recorded})


def _from_card(card: Mapping, key: str) -> str | None:
    value = card.get(key) or (card.get("recipe") or {}).get(key)
    if value is None:
        return None
    return str(value).strip() or None


def license_of(card: Mapping) -> str | None:
    """The card's (or its recipe's) ``license``, if any."""
    return _from_card(card, "license")


def citation_of(card: Mapping) -> str | None:
    """The card's (or its recipe's) ``citation`` (e.g. BibTeX), if any."""
    return _from_card(card, "citation")


def description_of(card: Mapping) -> str:
    """The recipe's description, else one sentence saying what the manifest holds."""
    given = _from_card(card, "description")
    if given:
        return given
    return (
        f"Training set {card['name']}@{card['version']}: {card.get('samples')} samples "
        f"({card.get('rows')} rows with repeats), made by curate {card.get('curate_version')}."
    )


def provenance(card: Mapping) -> dict[str, object]:
    """How the manifest was made, the items a reader needs to rebuild or trust it."""
    return {
        "manifest": f"{card['name']}@{card['version']}",
        "created": card.get("created_at"),
        "curate version": card.get("curate_version"),
        "recipe sha256": card.get("recipe_sha256"),
        "catalog fingerprint": card.get("catalog_fingerprint"),
        "rows sha256": card.get("rows_sha256"),
        "parent": card.get("parent") or "none",
        "seed": card.get("seed"),
    }


def _cell(value: object) -> str:
    # A "|" inside a cell would end it.
    return str(value).replace("|", "\\|")


def _yaml_features(classes: Sequence[str], columns: Mapping[str, str]) -> list[dict]:
    """``dataset_info.features`` as the Hub writes it: the image, the class label, then the columns."""
    label = {"class_label": {"names": {str(i): name for i, name in enumerate(classes)}}}
    return [
        {"name": "image", "dtype": "image"},
        {"name": "label", "dtype": label},
        *({"name": name, "dtype": dtype} for name, dtype in columns.items()),
    ]


def _front_matter(card: Mapping, split_folders: Mapping[str, str], classes, columns) -> dict:
    return {
        "pretty_name": f"{card['name']}@{card['version']}",
        "license": license_of(card) or UNKNOWN_LICENSE,
        "task_categories": ["image-classification"],
        "tags": ["curate", "medical-imaging"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": folder, "path": f"{folder}/*"} for folder in split_folders.values()],
            }
        ],
        # Shown by the Hub; datasets itself takes the ClassLabel from metadata.parquet.
        "dataset_info": {"features": _yaml_features(classes, columns)},
    }


def _counts_table(card: Mapping, split_folders: Mapping[str, str]) -> list[str]:
    lines = ["| split | class | samples | rows (with repeats) |", "| --- | --- | ---: | ---: |"]
    for split, by_class in (card.get("counts") or {}).items():
        for label, count in by_class.items():
            lines.append(
                f"| {_cell(split_folders.get(split, split))} | {_cell(label)} | {count['samples']} | {count['rows']} |"
            )
    return lines


def _exclusions(card: Mapping) -> list[str]:
    exclusions = card.get("exclusions") or {}
    if not exclusions:
        return ["No sample was excluded."]
    return ["| reason | samples |", "| --- | ---: |", *(f"| {_cell(k)} | {v} |" for k, v in exclusions.items())]


def hf_dataset_card(
    manifest, *, split_folders: Mapping[str, str], classes: Sequence[str], columns: Mapping[str, str]
) -> str:
    """The ``README.md`` of a Hugging Face ``imagefolder`` export.

    Parameters
    ----------
    manifest : Manifest
        The exported manifest.
    split_folders : mapping
        Manifest split -> folder (and split name) of the export, in writing order.
    classes : sequence of str
        The class names; index ``i`` is ``classes[i]``.
    columns : mapping
        The metadata columns besides ``file_name`` and ``label``: name -> datasets dtype.

    Returns
    -------
    str
        YAML front matter (configs, dataset_info, license), then Markdown.
    """
    card = manifest.card
    front = yaml.safe_dump(
        _front_matter(card, split_folders, classes, columns), sort_keys=False, allow_unicode=True
    )
    lines = [
        "---",
        front.rstrip("\n"),
        "---",
        "",
        f"# {card['name']}@{card['version']}",
        "",
        description_of(card),
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("imagefolder", data_dir="<this folder>")',
        'ds["train"].features["label"].names',
        "```",
        "",
        f"`label` is a `ClassLabel` with names {', '.join(f'`{c}`' for c in classes)}: the manifest's "
        "own labels, index i naming `names[i]`. A sample repeated n times by the sampler has n rows; "
        "`weight` is its training weight.",
        "",
        "## Splits and classes",
        "",
        *_counts_table(card, split_folders),
        "",
        "## Exclusions",
        "",
        *_exclusions(card),
        "",
        "## Provenance",
        "",
        *(f"- {key}: `{value}`" for key, value in provenance(card).items()),
        "",
        "## License",
        "",
        license_of(card) or "Unknown: the manifest's recipe names no license. Check the source collection's terms.",
    ]
    citation = citation_of(card)
    if citation:
        lines += ["", "## Citation", "", "```bibtex", citation, "```"]
    return "\n".join(lines) + "\n"

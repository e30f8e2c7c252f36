"""LLaVA fine-tuning data: one JSON list per split and an ``images/`` folder beside them.

Each entry is ``{"id", "image", "conversations": [{"from": "human", "value":
"<image>\\n<question>"}, {"from": "gpt", "value": "<answer>"}]}`` with ``image``
relative to ``images/`` (give that folder to the trainer as its image folder).
A sample with ``repeat`` n appears n times; its ids are ``<sample_id>``,
``<sample_id>-r2``, ... ``<sample_id>-rn``.
"""

from __future__ import annotations

import json
from pathlib import Path

from curate.errors import CurateError
from curate.export._files import ImagePlacer, label_value, repeated

__all__ = ["DEFAULT_QUESTION", "DEFAULT_ANSWER", "IMAGE_FOLDER", "write_llava", "conversation"]

DEFAULT_QUESTION = "What is the Kellgren-Lawrence grade of this knee radiograph?"
DEFAULT_ANSWER = "KL grade {label}"
IMAGE_FOLDER = "images"


def _fill(template: str, row: dict, what: str) -> str:
    fields = {k: ("" if v is None else v) for k, v in row.items()}
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise CurateError(f"{what} template {template!r}: {exc!r} is not a manifest column") from None


def conversation(row: dict, image: str, *, question: str, answer: str, entry_id: str) -> dict:
    """One LLaVA entry; templates are filled from the row (``{label}``, ``{split}``, any column)."""
    return {
        "id": entry_id,
        "image": image,
        "conversations": [
            {"from": "human", "value": "<image>\n" + _fill(question, row, "question")},
            {"from": "gpt", "value": _fill(answer, row, "answer")},
        ],
    }


def write_llava(
    manifest, folder: Path, placer: ImagePlacer, *, question: str = DEFAULT_QUESTION, answer: str = DEFAULT_ANSWER
) -> dict:
    """Write ``<split>.json`` files and ``images/``; return what was written."""
    files = {}
    images = folder / IMAGE_FOLDER
    rows = repeated(manifest.rows)
    for split, part in rows.groupby(rows["split"].astype(str), sort=False):
        entries = []
        for record in part.to_dict("records"):
            record["label"] = label_value(record["label"])
            name = placer.place(record, images)
            copy = int(record.pop("copy"))
            entry_id = str(record["sample_id"]) + (f"-r{copy + 1}" if copy else "")
            entries.append(conversation(record, name, question=question, answer=answer, entry_id=entry_id))
        (folder / f"{split}.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
        files[split] = {"file": f"{split}.json", "entries": len(entries)}
    return {"splits": files, "image_folder": IMAGE_FOLDER, "question": question, "answer": answer}

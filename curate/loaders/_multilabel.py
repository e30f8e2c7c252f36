"""What the multi-label chest X-ray loaders share: findings columns, views, image checks.

Every multi-label loader writes the same columns, so that one task definition
(:mod:`curate.tasks`) applies to any of them and the task can change without
ingesting again:

``findings``
    the positive findings, sorted, joined by ``|``; ``No Finding`` when there is none.
``findings_uncertain``
    (sources with uncertain labels only) the uncertain findings, same format,
    ``""`` when there is none.
``finding_<name>``
    (CheXpert-style sources only) one column per published observation, with the
    published value: 1 (positive), 0 (negative), -1 (uncertain) or NA (not mentioned).
``view`` and ``view_raw``
    the view normalized to ``PA``, ``AP``, ``LATERAL`` or ``FRONTAL`` (frontal of
    unknown projection), any other value upper-cased; the published value beside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from curate.errors import LoaderError
from curate.loaders.base import Option

__all__ = [
    "NO_FINDING",
    "SEPARATOR",
    "CHEXPERT_OBSERVATIONS",
    "FRONTAL_VIEWS",
    "VIEWS",
    "ALLOW_MISSING_IMAGES",
    "finding_column",
    "join_findings",
    "split_findings",
    "observation_columns",
    "normalize_view",
    "normalize_views",
    "check_images",
    "find_table",
    "clean_ids",
    "snake_case",
]

NO_FINDING = "No Finding"
SEPARATOR = "|"

#: The 14 observations of the CheXpert labeler, as CheXpert and MIMIC-CXR-JPG publish them.
CHEXPERT_OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

#: Normalized views. ``FRONTAL`` is a frontal image whose projection (PA or AP) is not published.
VIEWS: tuple[str, ...] = ("PA", "AP", "LATERAL", "FRONTAL")
FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP", "FRONTAL")

# Spellings met in the published tables; anything else is kept upper-cased
# (e.g. MIMIC's "AP AXIAL", "XTABLE LATERAL", "LAO", covid's "AXIAL") so that no
# unusual projection is silently counted as frontal.
_VIEW_ALIASES = {
    "PA": "PA",
    "POSTEROANTERIOR": "PA",
    "AP": "AP",
    "ANTEROPOSTERIOR": "AP",
    "AP SUPINE": "AP",
    "AP ERECT": "AP",
    "AP SEMI ERECT": "AP",
    "AP UPRIGHT": "AP",
    "L": "LATERAL",
    "LL": "LATERAL",
    "RL": "LATERAL",
    "LAT": "LATERAL",
    "LATERAL": "LATERAL",
    "LEFT LATERAL": "LATERAL",
    "RIGHT LATERAL": "LATERAL",
    "FRONTAL": "FRONTAL",
}

ALLOW_MISSING_IMAGES = Option(
    "allow_missing_images",
    "keep the rows whose image file is absent (e.g. to catalog the labels alone); "
    "without it a table whose images are missing is refused",
    type=bool,
    default=False,
)

_MAX_EXAMPLES = 3


def snake_case(name: str) -> str:
    """``"Pleural Effusion"`` -> ``"pleural_effusion"``: a predictable column name."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


def finding_column(name: str) -> str:
    """Name of the per-observation column of finding ``name``.

    >>> finding_column("Pleural Effusion")
    'finding_pleural_effusion'
    """
    return "finding_" + snake_case(name)


def join_findings(names: Iterable[str], *, empty: str = NO_FINDING) -> str:
    """Sorted, unique, ``|``-joined findings; ``empty`` when there are none.

    ``No Finding`` among other findings is dropped: the others are what the image shows.

    >>> join_findings(["Edema", "Atelectasis", "Edema"])
    'Atelectasis|Edema'
    >>> join_findings([])
    'No Finding'
    """
    unique = sorted({n for n in names if n and n != NO_FINDING})
    return SEPARATOR.join(unique) if unique else empty


def split_findings(text: object) -> list[str] | None:
    """The findings of a ``findings`` cell; None for a missing cell (unknown, not "none")."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return None
    return [part.strip() for part in str(text).split(SEPARATOR) if part.strip()]


def observation_columns(
    table: pd.DataFrame, names: Iterable[str], where: pd.Series, table_name: str
) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Turn CheXpert-style observation columns (1 / 0 / -1 / blank) into the findings columns.

    Parameters
    ----------
    table : DataFrame
        The published table, read as text.
    names : iterable of str
        The observation columns to read (all present in ``table``).
    where : Series
        What each row is called in the problems (usually its image path), same index.
    table_name : str
        The table's file name, for the problems.

    Returns
    -------
    DataFrame
        ``findings``, ``findings_uncertain`` and one ``finding_<name>`` column (Int64)
        per observation, on ``table``'s index.
    list of (kind, where, detail)
        One ``bad_observation_value`` per cell that is not 1, 0, -1 or blank (read as blank).
    """
    names = list(names)
    problems: list[tuple[str, str, str]] = []
    columns: dict[str, pd.Series] = {}
    for name in names:
        raw = table[name]
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & ~numeric.isin([1, 0, -1])
        for place, value in zip(where[bad], raw[bad]):
            problems.append(
                (
                    "bad_observation_value",
                    str(place),
                    f"{table_name}: {name} is {value!r}, expected 1, 0, -1 or blank; read as blank",
                )
            )
        columns[finding_column(name)] = numeric.where(~bad).astype("Int64")
    values = pd.DataFrame(columns, index=table.index)
    # "No Finding" is derived from the other observations, never listed as a finding itself.
    findings_names = sorted(n for n in names if n != NO_FINDING)
    matrix = values[[finding_column(n) for n in findings_names]].to_numpy(dtype="float64", na_value=np.nan)
    values.insert(0, "findings", _join_flags(matrix == 1, findings_names, NO_FINDING))
    values.insert(1, "findings_uncertain", _join_flags(matrix == -1, findings_names, ""))
    return values, problems


def _join_flags(flags: np.ndarray, names: list[str], empty: str) -> list[str]:
    labels = np.array(names, dtype=object)
    return [SEPARATOR.join(labels[row]) or empty for row in flags]


def normalize_view(raw: object) -> str | None:
    """Normalize a published view to ``PA``, ``AP``, ``LATERAL``, ``FRONTAL`` or its upper-cased text.

    >>> [normalize_view(v) for v in ["PA", "AP Supine", "L", "ll", "Axial", None]]
    ['PA', 'AP', 'LATERAL', 'LATERAL', 'AXIAL', None]
    """
    if raw is None or (not isinstance(raw, str) and pd.isna(raw)):
        return None
    text = " ".join(str(raw).replace("_", " ").replace("-", " ").split()).upper()
    if not text:
        return None
    return _VIEW_ALIASES.get(text, text)


def normalize_views(raw: pd.Series) -> pd.Series:
    """:func:`normalize_view` over a column, computed once per distinct value."""
    mapping = {value: normalize_view(value) for value in raw.dropna().unique()}
    return raw.map(mapping).astype("string")


def check_images(
    relpaths: pd.Series,
    root: Path,
    tables: Path | Sequence[Path],
    *,
    allow_missing: bool,
    exists: pd.Series | None = None,
) -> list[tuple[str, str, str]]:
    """Refuse a table whose images are missing, or (``allow_missing``) report them in one row.

    One summarized problem row rather than one per file: a labels-only ingest of
    a 100,000-row table would otherwise bury every other problem.

    Parameters
    ----------
    relpaths : Series
        The image paths, relative to ``root``.
    root : Path
        The data root.
    tables : Path or sequence of Path
        The table(s) listing the images, named in the message.
    allow_missing : bool
        Keep the rows (report them) instead of refusing the table.
    exists : Series of bool, optional
        Whether each file exists, when the caller knows already.

    Returns
    -------
    list of (kind, where, detail)
        Empty when every image exists, else one ``missing_images`` row.

    Raises
    ------
    LoaderError
        When images are missing and ``allow_missing`` is false.
    """
    tables = [tables] if isinstance(tables, Path) else list(tables)
    if exists is None:
        exists = relpaths.map(lambda p: os.path.isfile(root / p))
    missing = relpaths[~exists.astype(bool)]
    if missing.empty:
        return []
    listed_in = " and ".join(t.name for t in tables)
    message = f"{len(missing):,} of {len(relpaths):,} images listed in {listed_in} are not under {root}"
    if not allow_missing:
        where = tables[0] if len(tables) == 1 else tables[0].parent
        raise LoaderError(
            f"{where}: {message} (first: {missing.iloc[0]}); "
            "pass allow_missing_images to keep their rows without images"
        )
    examples = ", ".join(missing.iloc[:_MAX_EXAMPLES])
    return [("missing_images", listed_in, f"{message} (e.g. {examples}); their rows are kept")]


def find_table(folder: Path, name: str) -> Path | None:
    """``folder/name``, or its gzipped ``folder/name.gz``; None when neither exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def clean_ids(values: pd.Series) -> pd.Series:
    """Ids as text without surrounding spaces; ``"10000032.0"`` (a float export) -> ``"10000032"``."""
    text = values.astype("string").str.strip()
    text = text.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return text.mask(text == "")

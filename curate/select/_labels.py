"""Labels as class names: text keys that sort the way people read them (0, 1, 2, 10)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

__all__ = ["label_text", "class_order"]


def label_text(labels: pd.Series) -> pd.Series:
    """The labels as text (``Int64`` 3 becomes ``"3"``), missing labels kept as ``<NA>``."""
    return labels.astype("string")


def _natural(name: str) -> tuple[int, float, str]:
    try:
        return 0, float(name), name
    except ValueError:
        return 1, 0.0, name


def class_order(names: Iterable[str]) -> list[str]:
    """Distinct class names, numbers first in numeric order, then text.

    Examples
    --------
    >>> class_order(["10", "2", "b", "a", "2"])
    ['2', '10', 'a', 'b']
    """
    return sorted(set(names), key=_natural)

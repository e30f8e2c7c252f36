"""Rules that turn measures into flags, each with a reason a person can read.

Two kinds of rule: absolute thresholds with sensible defaults for radiographs
("mean brightness 0.04 < 0.10"), and dataset-relative outliers by robust z-score
(median and MAD of the readable images). Grayscale is normal for radiographs and
never a flag. Every threshold can be overridden per run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from curate.errors import CurateError

__all__ = ["Thresholds", "FlagSet", "image_flags", "robust_z"]

# 1.4826 * MAD estimates the standard deviation of normal data.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the scan; override any by name (``Thresholds.from_dict``)."""

    dark_mean: float = 0.10
    overexposed_mean: float = 0.90
    overexposed_saturated: float = 0.50
    blank_contrast: float = 0.01
    blank_entropy: float = 2.5
    low_contrast_range: float = 0.15
    low_information_entropy: float = 3.0
    blurred_sharpness: float = 0.10
    padded_border: float = 0.30
    inverted_score: float = 0.20
    text_marks: int = 4
    outlier_z: float = 5.0
    odd_size_ratio: float = 0.25
    near_duplicate_radius: int = 4
    near_duplicate_similarity: float = 0.55
    allowed_modalities: tuple[str, ...] = ("CR", "DX")
    expected_body_parts: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, values: dict | None) -> "Thresholds":
        """Build from ``{name: value}``; an unknown name or a wrong type is refused by name."""
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise CurateError(f"unknown scan threshold(s) {', '.join(unknown)}; known: {', '.join(known)}")
        parsed = {}
        defaults = cls()
        for name, value in values.items():
            default = getattr(defaults, name)
            try:
                if isinstance(default, tuple):
                    items = value.split(",") if isinstance(value, str) else list(value)
                    parsed[name] = tuple(str(v).strip().upper() for v in items if str(v).strip())
                elif isinstance(default, int) and not isinstance(default, bool):
                    parsed[name] = int(value)
                else:
                    parsed[name] = float(value)
            except (TypeError, ValueError):
                raise CurateError(f"scan threshold {name} needs a {type(default).__name__}, got {value!r}") from None
        return cls(**{**asdict(defaults), **parsed})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class FlagSet:
    """Collects flags per row: a boolean column each, and the reasons as text.

    Flags are held as numpy arrays on the row positions of ``index``: the scan adds
    a few dozen flags over every row, and pandas' per-call alignment cost more than
    the rules themselves.
    """

    def __init__(self, index: pd.Index):
        self.index = index
        self._masks: dict[str, np.ndarray] = {}
        self._reasons: dict[str, np.ndarray] = {}

    @property
    def columns(self) -> dict[str, pd.Series]:
        """Every flag as a boolean Series on ``index``, in the order they were added."""
        return {name: pd.Series(mask, index=self.index) for name, mask in self._masks.items()}

    def _positions(self, labels: pd.Index) -> np.ndarray:
        if labels is self.index or labels.equals(self.index):
            return np.arange(len(self.index))
        where = self.index.get_indexer(labels)
        if (where < 0).any():
            raise KeyError(f"rows not in the flag set: {list(labels[where < 0][:5])}")
        return where

    def add(
        self,
        name: str,
        mask: pd.Series,
        reason: pd.Series | str | Callable[[pd.DataFrame], pd.Series],
        frame: pd.DataFrame | None = None,
    ) -> None:
        """Add (or OR into) flag ``name``.

        ``mask`` may cover a subset of the rows (missing rows and values are not
        flagged). ``reason`` is one text for every flagged row, a Series of texts,
        or a function of ``frame``'s flagged rows returning their texts as a Series
        on the same index (``frame`` must hold every row the mask flags):
        formatting numbers is the slow part of the rules, and most rows are not
        flagged.
        """
        flagged_here = mask.fillna(False).to_numpy(dtype=bool)
        new = np.zeros(len(self.index), dtype=bool)
        new[self._positions(mask.index)[flagged_here]] = True
        rows = self.index[new]
        if callable(reason):
            source = frame if frame is not None else pd.DataFrame(index=self.index)
            reason = reason(source.loc[rows.intersection(source.index, sort=False)])
        text = np.full(len(self.index), None, dtype=object)
        if isinstance(reason, pd.Series):
            given = reason.reindex(rows)
            text[new] = np.where(given.isna().to_numpy(), None, given.to_numpy(dtype=object))
        else:
            text[new] = reason
        if name in self._masks:  # a row flagged earlier keeps its first reason
            earlier = self._masks[name]
            self._reasons[name] = np.where(earlier, self._reasons[name], text)
            self._masks[name] = earlier | new
        else:
            self._masks[name] = new
            self._reasons[name] = text

    def to_frame(self) -> pd.DataFrame:
        """``flag_<name>`` booleans, ``flags`` (names joined by ``|``) and ``reasons`` (``name: reason; ...``)."""
        frame = pd.DataFrame({f"flag_{k}": v for k, v in self._masks.items()}, index=self.index)
        names = np.full(len(self.index), "", dtype=object)
        reasons = np.full(len(self.index), "", dtype=object)
        for name, mask in self._masks.items():
            for k, text in zip(np.flatnonzero(mask), self._reasons[name][mask]):
                names[k] += f"|{name}"
                reasons[k] += f"; {name}: {text}"
        frame["flags"] = pd.array([n[1:] for n in names], dtype="string")
        frame["reasons"] = pd.array([r[2:] for r in reasons], dtype="string")
        return frame


def robust_z(values: pd.Series) -> tuple[pd.Series, float, float]:
    """Robust z-scores ``(x - median) / (1.4826 * MAD)`` with the median and scale used.

    When more than half the values are equal (MAD 0), the scale falls back to the
    mean absolute deviation, so a constant measure flags nothing and a few real
    deviations still stand out.
    """
    finite = values[np.isfinite(values.astype(float))]
    if finite.empty:
        return pd.Series(0.0, index=values.index), float("nan"), float("nan")
    median = float(finite.median())
    scale = _MAD_TO_SIGMA * float((finite - median).abs().median())
    if scale == 0:
        scale = float((finite - median).abs().mean()) * 1.2533  # sqrt(pi/2): mean abs dev to sigma
    if scale == 0:
        return pd.Series(0.0, index=values.index), median, 0.0
    return (values - median) / scale, median, scale


def _fmt(values: pd.Series, digits: int = 2) -> pd.Series:
    return values.map(lambda v: f"{v:.{digits}f}").astype(object)  # object also when empty: texts join to it


_OUTLIER_MEASURES = {"brightness_mean": "both", "contrast": "low", "sharpness": "low", "entropy": "low"}


def image_flags(measures: pd.DataFrame, t: Thresholds, flags: FlagSet) -> None:
    """Add the image-quality flags to ``flags`` (readable rows only, except ``unreadable``)."""
    readable = measures["readable"].astype(bool)
    flags.add(
        "unreadable", ~readable, lambda f: f["error"].astype(str) + ": " + f["error_detail"].astype(str), measures
    )
    m = measures[readable]
    if m.empty:
        return
    flags.add(
        "dark",
        m["brightness_mean"] < t.dark_mean,
        lambda f: "mean brightness " + _fmt(f["brightness_mean"]) + f" < {t.dark_mean:.2f}",
        m,
    )
    flags.add(
        "overexposed",
        (m["brightness_mean"] > t.overexposed_mean) | (m["saturated_fraction"] > t.overexposed_saturated),
        lambda f: "mean brightness " + _fmt(f["brightness_mean"]) + f" (> {t.overexposed_mean:.2f}), "
        + _fmt(f["saturated_fraction"] * 100, 0) + f"% saturated (> {t.overexposed_saturated:.0%})",
        m,
    )
    blank = (m["contrast"] < t.blank_contrast) & (m["entropy"] < t.blank_entropy)
    flags.add(
        "blank",
        blank,
        lambda f: "near-constant: contrast " + _fmt(f["contrast"], 3) + f" < {t.blank_contrast}, entropy "
        + _fmt(f["entropy"], 1) + f" bits < {t.blank_entropy}",
        m,
    )
    flags.add(
        "low_contrast",
        (m["dynamic_range"] < t.low_contrast_range) & ~blank,
        lambda f: "dynamic range (p99-p01) " + _fmt(f["dynamic_range"]) + f" < {t.low_contrast_range:.2f}",
        m,
    )
    flags.add(
        "low_information",
        m["entropy"] < t.low_information_entropy,
        lambda f: "entropy " + _fmt(f["entropy"]) + f" bits < {t.low_information_entropy:.1f}",
        m,
    )
    flags.add(
        "blurred",
        (m["sharpness"] < t.blurred_sharpness) & ~blank,
        lambda f: "sharpness " + _fmt(f["sharpness"], 3) + f" < {t.blurred_sharpness}",
        m,
    )
    flags.add(
        "padded",
        m["border_fraction"] > t.padded_border,
        lambda f: _fmt(f["border_fraction"] * 100, 0) + "% flat border (padding)",
        m,
    )
    flags.add(
        "likely_inverted",
        (m["inversion_score"] > t.inverted_score) & ~blank,
        lambda f: "border brighter than centre by " + _fmt(f["inversion_score"]) + f" (> {t.inverted_score:.2f}): inverted?",
        m,
    )
    if "text_marks" in m.columns:
        marks = pd.to_numeric(m["text_marks"], errors="coerce")
        flags.add(
            "text_like",
            (marks >= t.text_marks).fillna(False).astype(bool),
            lambda f: _fmt(f["text_marks"], 0) + f" character-like marks in a row (>= {t.text_marks}): "
            "burned-in text? review before export",
            m,
        )
    for column, side in _OUTLIER_MEASURES.items():
        z, median, scale = robust_z(m[column].astype(float))
        if not np.isfinite(scale) or scale == 0:
            continue
        mask = (z.abs() if side == "both" else -z) > t.outlier_z

        def reason(f: pd.DataFrame, column: str = column, side: str = side, median: float = median) -> pd.Series:
            return (
                f"{column} " + _fmt(f[column], 3) + " is " + _fmt(f["_z"].abs(), 1)
                + f" robust SDs {'from' if side == 'both' else 'below'} the dataset median {median:.3f}"
            )

        flags.add(f"outlier_{column}", mask & ~blank, reason, m[[column]].assign(_z=z))
    pixels = (m["width"] * m["height"]).astype(float)
    typical = float(pixels.median())
    flags.add(
        "odd_size",
        (pixels / typical - 1).abs() > t.odd_size_ratio,
        lambda f: f["width"].astype(int).astype(str) + "x" + f["height"].astype(int).astype(str)
        + f" differs from the typical {int(round(typical ** 0.5))}^2 pixels by more than {t.odd_size_ratio:.0%}",
        m,
    )
    aspect = m["aspect_ratio"].astype(float)
    typical_aspect = float(aspect.median())
    flags.add(
        "odd_aspect_ratio",
        (aspect / typical_aspect - 1).abs() > t.odd_size_ratio,
        lambda f: "aspect ratio " + _fmt(f["aspect_ratio"].astype(float)) + f" vs typical {typical_aspect:.2f}",
        m,
    )

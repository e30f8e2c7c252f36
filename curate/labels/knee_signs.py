"""Measured signs of knee osteoarthritis on a PA radiograph centred on the joint.

The Kellgren-Lawrence grade is defined by joint-space narrowing, marginal
osteophytes, subchondral sclerosis and bone-end deformity. A generic image
descriptor sees these only faintly (a 2-pixel narrowing moves a thumbnail very
little), so the built-in features add direct measurements of them:

- the joint line, found per compartment as the darkest row band;
- the joint-space width of each compartment, as the integrated darkness of the
  gap between femur and tibia (sub-pixel, insensitive to exposure);
- the brightness of the subchondral bone next to the gap (sclerosis);
- spurs at the joint margins, as outward bumps of the bone outline above and below
  the joint line, measured against the outline's own running median;
- marginal lipping: a healthy condyle is convex, so the area by which its outline
  falls short of its own convex hull measures an osteophyte growing off its margin;
  on the tibia, how far the plateau's rim reaches out past the side of the bone below
  (negative for a rounded corner, positive for a lip).
- the same two lip measures row by row (summed over both margins, and the larger of
  the two), so the probe learns where on the margin a spur grows rather than only
  its total: a grade-2 spur shows as a few rows of shortfall high on the condyle,
  which a total over the whole margin dilutes.
- bright spots along each margin's bone edge where spurs grow (a white top-hat keeps
  structures narrower than 7 px that are brighter than their surroundings), summed and
  at their peak: a small spur that barely moves the traced outline still shows as a
  spot on the edge. Among the demo's grade 0-2 knees these track the drawn spur sizes
  far better than the outline measures do (r about 0.8 against 0.6-0.7).

Compartments are reported narrower first and margins smaller first, so left and
right knees give the same features. On images that are not knee radiographs these
numbers are meaningless but finite, and the probe learns to ignore them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["KNEE_SIGN_NAMES", "knee_sign_features"]

_MEASURE_NAMES: tuple[str, ...] = (
    "jsw_narrow",
    "jsw_wide",
    "jsw_narrow_q20",
    "jsw_wide_q20",
    "jsw_ratio",
    "sclerosis_narrow",
    "sclerosis_wide",
    "gap_darkness_narrow",
    "gap_darkness_wide",
    "spur_femur_small",
    "spur_femur_max_small",
    "spur_tibia_small",
    "spur_tibia_max_small",
    "spur_femur_large",
    "spur_femur_max_large",
    "spur_tibia_large",
    "spur_tibia_max_large",
    "spur_femur_total",
    "spur_femur_max_total",
    "spur_tibia_total",
    "spur_tibia_max_total",
    "lip_femur_small",
    "lip_femur_large",
    "lip_femur_total",
    "lip_tibia_small",
    "lip_tibia_large",
    "lip_tibia_total",
    # bright spots on the bone edge (see _spots): per margin, smaller first, then both margins
    *(f"spot_{bone}{kind}_{margin}" for margin in ("small", "large", "total") for bone in ("femur", "tibia") for kind in ("", "_max")),
)
_LIP_ROWS = (38, 1)  # rows above the joint line (from, to) where the condyle's margin is convex
_RIM_ROWS = (-3, 8)  # rows from the plateau top (from, to) that hold the tibial rim
# the lip measures row by row: femur rows named by how far above the joint line they lie,
# tibia rows by their offset from the plateau top
_PROFILE_NAMES = tuple(
    [f"lip_femur_{kind}_up{row}" for kind in ("sum", "max") for row in range(_LIP_ROWS[0], _LIP_ROWS[1], -1)]
    + [f"lip_tibia_{kind}_{row:+d}" for kind in ("sum", "max") for row in range(*_RIM_ROWS)]
)
KNEE_SIGN_NAMES: tuple[str, ...] = _MEASURE_NAMES + _PROFILE_NAMES

_SIZE = 224  # px: the signs are measured at the scale of the public KL crops
_COMPARTMENTS = ((0.14, 0.40), (0.60, 0.86))  # column ranges (fraction of width) of the two compartments
_SEARCH_ROWS = (0.22, 0.78)  # where the joint line may lie
_JOINT_SPREAD = 12  # px: how far one compartment's joint line may lie from the common one (tilt, uneven gaps)
_GAP_HALF = 14  # px each side of the joint line that the gap may take
_GAP_FLOOR = 0.15  # darkness (0 bone, 1 soft tissue) below which a row is bone texture, not gap
_BONE_OFFSET = (14, 30)  # px from the joint line where the bone ends are measured
_SPUR_ROWS = (44, 36)  # px above / below the joint line searched for spurs
_OUTLINE_WINDOW = 17  # rows of the running median an outline bump is measured against
_PLATEAU_ROWS = ((-1, 5), (6, 12))  # rows from the plateau top: its corner, and its side below
_NOTCH_ROWS = (25, 8)  # rows above the joint line (from, to) where the intercondylar notch is only soft tissue
_OUTLINE_SMOOTH = 0.7  # px: blur before the outline is traced
_OUTLINE_LEVEL = 0.35  # the outline lies this far from the soft-tissue level up to the bone level
_EDGE_CLEARANCE = 2.0  # px: a bone outline closer to the image edge than this may be cut off
_LIP_COLUMNS = 70  # px in from the image edge that hold the outer half of a condyle
_SPOT_SIZE = 7  # px: the white top-hat keeps bright structures narrower than this (a spur, not the bone)
_SPOT_BAND = (6, 4)  # px outside and inside the bone outline where spots count
_SPOT_FEMUR_ROWS = (36, 12)  # rows above the joint line (from, to) where femoral spurs grow
_SPOT_COLUMNS = 90  # px in from the image edge searched for the margin's outline


def _normalized(pixels: np.ndarray) -> np.ndarray:
    """The image at 224 px, stretched between its 3rd and 97th percentiles."""
    # a non-finite pixel (a corrupt float image) would otherwise stop the whole feature run
    image = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if image.shape != (_SIZE, _SIZE):
        image = np.asarray(Image.fromarray(image, mode="F").resize((_SIZE, _SIZE), Image.Resampling.BOX))
    lo, hi = np.percentile(image, [3, 97])
    return (image - lo) / (hi - lo + 1e-6)


def _joint_row(smooth: np.ndarray, columns: list[slice], near: int | None = None) -> int:
    """The darkest row band over the given columns: the joint line (within ``_JOINT_SPREAD`` of ``near``)."""
    height = smooth.shape[0]
    top, bottom = int(height * _SEARCH_ROWS[0]), int(height * _SEARCH_ROWS[1])
    if near is not None:
        top, bottom = max(top, near - _JOINT_SPREAD), min(bottom, near + _JOINT_SPREAD + 1)
    darkness = np.mean([smooth[top:bottom, c][:, ::2].mean(axis=1) for c in columns], axis=0)
    return top + int(np.argmin(darkness))


def _soft_tissue_level(smooth: np.ndarray, joint_row: int) -> float:
    """Brightness of the soft tissue at the joint: the darkest part of the intercondylar notch.

    The joint space holds cartilage, so its darkness is measured from the bone level down
    to this one; the image's own darkest pixels lie at its edges, where the limb is thinner,
    and would make a joint under thick soft tissue look narrow.
    """
    width = smooth.shape[1]
    lo, hi = max(joint_row - _NOTCH_ROWS[0], 0), max(joint_row - _NOTCH_ROWS[1], 1)
    return float(np.percentile(smooth[lo:hi, int(width * 0.4) : int(width * 0.6)], 5))


def _compartment(smooth: np.ndarray, columns: slice, guide: int, tissue: float) -> tuple[int, np.ndarray, float, float]:
    """Joint row, per-column gap widths, sclerosis and gap darkness of one compartment."""
    height = smooth.shape[0]
    block = smooth[:, columns][:, ::2]
    row = _joint_row(smooth, [columns], guide)
    # each column's own gap centre, near the compartment's joint row
    lo, hi = max(row - 10, 0), min(row + 11, height)
    centres = lo + np.argmin(block[lo:hi], axis=0)
    offsets = np.arange(-_BONE_OFFSET[1], _BONE_OFFSET[1] + 1)
    rows = np.clip(centres[None, :] + offsets[:, None], 0, height - 1)
    profile = np.take_along_axis(block, rows, axis=0)  # (offsets, columns)
    far = np.abs(offsets) >= _BONE_OFFSET[0]
    bone = np.median(profile[far], axis=0)
    gap = np.abs(offsets) <= _GAP_HALF
    # a gap row as dark as the soft tissue counts as one pixel
    darkness = np.clip((bone - profile[gap]) / (bone[None, :] - tissue + 1e-6), 0.0, 1.0)
    # only the dark run through the gap centre counts: summed over the whole window, the
    # darker half of the bone texture adds a floor that hides how narrow a tight gap is
    dark = darkness > _GAP_FLOOR
    centre = _GAP_HALF
    run = np.zeros_like(dark)
    run[centre:] = np.cumprod(dark[centre:], axis=0)
    run[: centre + 1] |= np.cumprod(dark[centre::-1], axis=0)[::-1].astype(bool)
    widths = (darkness * run).sum(axis=0)
    half = np.rint(widths / 2).astype(int)
    near = (np.abs(offsets)[:, None] > half[None, :]) & (np.abs(offsets)[:, None] <= half[None, :] + 6)
    sclerosis = float(np.median((profile * near).sum(axis=0) / np.maximum(near.sum(axis=0), 1) - bone))
    centre_rows = np.flatnonzero(offsets == 0)[0]
    return row, widths, sclerosis, float(np.median(profile[centre_rows]))


def _left_outline(image: np.ndarray, threshold: float) -> np.ndarray:
    """Per row, the sub-pixel column where the bone starts, coming from the left edge."""
    above = image > threshold
    first = np.argmax(above, axis=1)
    rows = np.arange(image.shape[0])
    previous = image[rows, np.maximum(first - 1, 0)]
    current = image[rows, first]
    fraction = np.clip((threshold - previous) / (current - previous + 1e-6), 0.0, 1.0)
    edge = np.where(first > 0, first - 1 + fraction, first).astype(np.float64)
    return np.where(above.any(axis=1), edge, image.shape[1])


def _convex_minorant(y: np.ndarray) -> np.ndarray:
    """The greatest convex function below ``y`` (its lower hull), at every index of ``y``."""
    hull: list[int] = []
    for i in range(len(y)):
        # drop the last hull point while it lies on or above the chord to the new point
        while len(hull) >= 2 and (y[hull[-1]] - y[hull[-2]]) * (i - hull[-2]) >= (y[i] - y[hull[-2]]) * (hull[-1] - hull[-2]):
            hull.pop()
        hull.append(i)
    return np.interp(np.arange(len(y)), hull, y[hull])


def _femoral_lip(half: np.ndarray, joint_row: int, threshold: float) -> float:
    """Osteophyte size at a femoral margin: the root of the outline's shortfall from convexity (px)."""
    lo, hi = max(joint_row - _LIP_ROWS[0], 0), max(joint_row - _LIP_ROWS[1], 1)
    window = half[lo:hi, :_LIP_COLUMNS]
    outline = _left_outline(window, threshold)
    outline = outline[outline < window.shape[1] - 1]  # rows with bone in the window
    if len(outline) < 4:
        return 0.0
    # the bone lies right of the outline: its margin is convex exactly where the outline is a
    # convex function of the row, so a lip shows as area between the outline and its minorant
    return float(np.sqrt(np.sum(outline - _convex_minorant(outline))))


def _lip_profiles(smooth: np.ndarray, threshold: float, joint_rows: tuple[int, int], plateau_tops: tuple[int, int]) -> np.ndarray:
    """Per row, the condyle's shortfall from convexity and the plateau rim's reach past its side.

    Rows are counted from each compartment's own joint row (femur) and plateau top
    (tibia); the two margins are combined as their sum and their maximum, so left
    and right knees read alike. A margin cut by the image edge is read off the other margin.
    """
    height = smooth.shape[0]
    femur_rows = np.arange(-_LIP_ROWS[0], -_LIP_ROWS[1])
    rim_rows = np.arange(*_RIM_ROWS)
    femur, tibia = [], []
    for half, row, top in zip(_halves(smooth), joint_rows, plateau_tops, strict=True):
        window = half[np.clip(row + femur_rows, 0, height - 1), :_LIP_COLUMNS]
        outline = np.minimum(_left_outline(window, threshold), window.shape[1] - 1)
        shortfall = outline - _convex_minorant(outline)
        top = int(np.clip(top, -_RIM_ROWS[0], height - _PLATEAU_ROWS[1][1] - 1))
        rim = _left_outline(half[top + rim_rows], threshold)
        side = np.median(_left_outline(half[top + _PLATEAU_ROWS[1][0] : top + _PLATEAU_ROWS[1][1]], threshold))
        reach = np.clip(side - rim, -10.0, 20.0)  # a bone edge lost in the soft tissue is not a 100-px lip
        femur.append(None if outline.min() < _EDGE_CLEARANCE else shortfall)
        tibia.append(None if min(rim.min(), side) < _EDGE_CLEARANCE else reach)
    femur, tibia = _other_margin(femur, len(femur_rows)), _other_margin(tibia, len(rim_rows))
    return np.concatenate([femur.sum(axis=0), femur.max(axis=0), tibia.sum(axis=0), tibia.max(axis=0)])


def _other_margin(margins: list, size: int) -> np.ndarray:
    """Both margins' measures (2, size), a margin cut by the image edge (None) read off the other one.

    A cut margin has no outline to measure; reporting no spur there would read a zoomed
    or off-centre knee as a healthier one, while spurs grow at both margins of a joint.
    With both margins cut there is nothing to measure: zeros.
    """
    seen = [m for m in margins if m is not None]
    if not seen:
        return np.zeros((len(margins), size))
    return np.asarray([seen[0] if m is None else m for m in margins], dtype=np.float64)


def _spots(image: np.ndarray, threshold: float, joint_rows: tuple[int, int], plateau_tops: tuple[int, int]) -> np.ndarray:
    """Bright spots on the bone edge at each margin: (2 margins, [femur sum, femur peak, tibia sum, tibia peak]).

    The femoral band follows the condyle's outline above the joint line, the tibial one
    the plateau's rim; a margin cut by the image edge is read off the other one.
    """
    height = image.shape[0]
    femurs, tibias = [], []
    for half, row, top in zip(_halves(image), joint_rows, plateau_tops, strict=True):
        femurs.append(_spot_band(half, row + np.arange(-_SPOT_FEMUR_ROWS[0], -_SPOT_FEMUR_ROWS[1]), threshold))
        top = int(np.clip(top, -_RIM_ROWS[0], height - _RIM_ROWS[1]))
        tibias.append(_spot_band(half, top + np.arange(*_RIM_ROWS), threshold))
    return np.hstack([_other_margin(femurs, 2), _other_margin(tibias, 2)])


def _spot_band(half: np.ndarray, rows: np.ndarray, threshold: float) -> list[float] | None:
    """Sum and peak of the white top-hat across the bone outline on ``rows`` (None: cut by the image edge)."""
    rows = np.clip(rows, 0, half.shape[0] - 1)
    pad = _SPOT_SIZE - 1  # an opening looks this far: the crop's top-hat equals the whole image's on the band
    lo, hi = max(int(rows.min()) - pad, 0), min(int(rows.max()) + 1 + pad, half.shape[0])
    edge = _left_outline(half[rows, :_SPOT_COLUMNS], threshold)
    if edge.min() < _EDGE_CLEARANCE:
        return None
    tophat = ndimage.white_tophat(half[lo:hi, : _SPOT_COLUMNS + pad], size=_SPOT_SIZE)[rows - lo, :_SPOT_COLUMNS]
    columns = np.arange(_SPOT_COLUMNS)[None, :]
    band = (columns >= edge[:, None] - _SPOT_BAND[0]) & (columns <= edge[:, None] + _SPOT_BAND[1])
    spots = tophat * band
    return [float(spots.sum()), float(spots.max())]


def _halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The left half and the mirrored right half: each with its outer margin on the left."""
    width = image.shape[1]
    return image[:, : width // 2], image[:, width // 2 :][:, ::-1]


def _outline_threshold(smooth: np.ndarray, joint_row: int) -> float:
    """The brightness a bone outline is traced at: between the soft tissue and the bone near the joint."""
    height, width = smooth.shape
    bone = float(np.median(smooth[max(joint_row - 40, 0) : max(joint_row - 20, 1), width // 3 : 2 * width // 3]))
    r0, r1 = max(joint_row - _SPUR_ROWS[0], 0), min(joint_row + _SPUR_ROWS[1], height)
    tissue = float(np.percentile(smooth[r0:r1], 3))
    return tissue + _OUTLINE_LEVEL * (bone - tissue)


def _spurs(smooth: np.ndarray, threshold: float, joint_row: int, plateau_tops: tuple[int, int], joint_rows: tuple[int, int]) -> np.ndarray:
    """Spurs at the left and right joint margins (2 x 6).

    Per margin: femoral and tibial bump sums and maxima, the femoral lip (convexity
    shortfall) and the tibial lip (how far the plateau's rim reaches past its side).

    A femoral spur is a bump of the condyle's outline against its own running median.
    A tibial spur sits on the plateau's corner, so the top rows of the plateau are
    compared with its straight side just below (above the fibular head).
    """
    height = smooth.shape[0]
    r0 = max(joint_row - _SPUR_ROWS[0], 0)
    femurs, tibias = [], []
    for half, top, row in zip(_halves(smooth), plateau_tops, joint_rows, strict=True):
        outline = _left_outline(half[r0 : joint_row - 2], threshold)
        femur = np.clip(ndimage.median_filter(outline, size=_OUTLINE_WINDOW, mode="nearest") - outline, 0.0, None)
        top = int(np.clip(top, 1, height - _PLATEAU_ROWS[1][1] - 1))
        corner = _left_outline(half[top + _PLATEAU_ROWS[0][0] : top + _PLATEAU_ROWS[0][1]], threshold)
        side = np.median(_left_outline(half[top + _PLATEAU_ROWS[1][0] : top + _PLATEAU_ROWS[1][1]], threshold))
        tibia = np.clip(side - corner, 0.0, None)
        lip = float(side - corner.min()) if corner.size else 0.0
        femoral = [femur.sum(), femur.max(initial=0.0), _femoral_lip(half, row, threshold)]
        tibial = [tibia.sum(), tibia.max(initial=0.0), lip]
        # a margin cut by the image edge (a zoomed or off-centre knee) has no outline to read:
        # its straight cut would pass for a spur, so it is read off the other margin
        femurs.append(None if outline.min(initial=np.inf) < _EDGE_CLEARANCE else femoral)
        tibias.append(None if min(corner.min(initial=np.inf), side) < _EDGE_CLEARANCE else tibial)
    femurs, tibias = _other_margin(femurs, 3), _other_margin(tibias, 3)
    return np.column_stack([femurs[:, :2], tibias[:, :2], femurs[:, 2], tibias[:, 2]])


def knee_sign_features(pixels: np.ndarray) -> np.ndarray:
    """Measured OA signs of one normalized grayscale knee image (see :data:`KNEE_SIGN_NAMES`).

    Parameters
    ----------
    pixels : ndarray (h, w)
        Decoder output: float in [0, 1], bone bright.

    Returns
    -------
    ndarray of float32, one value per name in :data:`KNEE_SIGN_NAMES`.
    """
    image = _normalized(pixels)
    width = image.shape[1]
    smooth = ndimage.uniform_filter1d(ndimage.gaussian_filter1d(image, 1.0, axis=0), 5, axis=1)
    columns = [slice(int(width * a), int(width * b)) for a, b in _COMPARTMENTS]
    # Both compartments together find the joint line even where one has lost its gap (bone on
    # bone, KL 4): alone, its darkest row band could lie anywhere in the bone texture.
    joint = _joint_row(smooth, columns)
    tissue = _soft_tissue_level(smooth, joint)
    parts = [_compartment(smooth, c, joint, tissue) for c in columns]
    medians = [float(np.median(p[1])) for p in parts]
    q20 = [float(np.quantile(p[1], 0.2)) for p in parts]
    narrow, wide = np.argsort(medians, kind="stable")
    joint_row = int(round(np.mean([p[0] for p in parts])))
    # compartment k lies in the image half k, where its plateau starts half a gap below its joint row
    plateau_tops = tuple(int(round(p[0] + m / 2)) for p, m in zip(parts, medians, strict=True))
    outlined = ndimage.gaussian_filter(image, _OUTLINE_SMOOTH)
    threshold = _outline_threshold(outlined, joint_row)
    joint_rows = (parts[0][0], parts[1][0])
    spurs = _spurs(outlined, threshold, joint_row, plateau_tops, joint_rows)
    profiles = _lip_profiles(outlined, threshold, joint_rows, plateau_tops)
    spots = _spots(outlined, threshold, joint_rows, plateau_tops)
    values = [
        medians[narrow],
        medians[wide],
        q20[narrow],
        q20[wide],
        medians[narrow] / (medians[wide] + 1e-3),
        parts[narrow][2],
        parts[wide][2],
        parts[narrow][3],
        parts[wide][3],
        *np.sort(spurs[:, :4], axis=0).ravel(),
        *spurs[:, :4].sum(axis=0),
        *np.sort(spurs[:, 4]),
        spurs[:, 4].sum(),
        *np.sort(spurs[:, 5]),
        spurs[:, 5].sum(),
        *np.sort(spots, axis=0).ravel(),
        *spots.sum(axis=0),
        *profiles,
    ]
    return np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)

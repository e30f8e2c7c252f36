"""Burned-in text: a row of bright, character-sized marks on a flat background.

Names, dates and accession numbers written into the pixels survive every header-level
de-identification. They sit where no anatomy is (the collimated margins), as thin
strokes much brighter than their surroundings, several glyphs of one height on one
baseline. Bone texture also has bright specks (trabeculae, osteophyte tips), but not
a run of same-sized ones on a flat background: on the 2,482 real knees of the public
KL val/test splits no image reaches four such marks in a row.
"""

from __future__ import annotations

import numpy as np

from curate._opencv import opencv

__all__ = ["TEXT_SIZE", "text_marks"]

#: Images are searched at this long side at most (glyphs of full-size radiographs stay several pixels tall).
TEXT_SIZE = 512
_KERNEL = 7  # wider than a stroke, narrower than a glyph's height at TEXT_SIZE
_STROKE_CONTRAST = 70  # grey levels above the opened background
_STROKE_BRIGHTNESS = 170
_FLAT_BACKGROUND = 40  # spread (p90 - p10) of the grey levels around the marks


def text_marks(pixels: np.ndarray) -> int:
    """The longest run of character-like bright marks on one baseline over a flat background.

    Parameters
    ----------
    pixels : ndarray
        2-D uint8, bone bright (as :meth:`curate.imaging.DecodedImage.as_uint8`).

    Returns
    -------
    int
        0 when there is none; four or more is typical of a line of burned-in text.
    """
    cv2 = opencv()
    height, width = pixels.shape
    scale = TEXT_SIZE / max(height, width)
    if scale < 1:
        # max-pooled, so a stroke thinner than the step stays as bright as it is
        step = int(np.ceil(1 / scale))
        pooled = cv2.dilate(pixels, np.ones((step, step), np.uint8))
        pixels = cv2.resize(pooled, (max(1, round(width * scale)), max(1, round(height * scale))),
                            interpolation=cv2.INTER_NEAREST)
        height, width = pixels.shape
    if min(height, width) < 16:
        return 0
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (_KERNEL, _KERNEL))
    tophat = cv2.morphologyEx(pixels, cv2.MORPH_TOPHAT, kernel)
    mask = ((tophat >= _STROKE_CONTRAST) & (pixels >= _STROKE_BRIGHTNESS)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 4:  # the background and fewer than three marks
        return 0
    x, y, w, h, area = stats[1:].T
    glyph = (area >= 4) & (h >= 4) & (h <= 0.12 * height) & (w <= 0.12 * width) & (area < 0.8 * w * h)
    if glyph.sum() < 3:
        return 0
    x, y, w, h = x[glyph], y[glyph], w[glyph], h[glyph]
    bottom, centre = y + h, x + w / 2
    best = 0
    for i in np.argsort(-h):  # tallest first: a line is found from any of its glyphs
        line = (
            (np.abs(bottom - bottom[i]) <= 3)
            & (np.abs(h - h[i]) <= np.maximum(2, 0.5 * h[i]))
            & (np.abs(centre - centre[i]) <= 0.3 * width)
        )
        size = int(line.sum())
        if size <= best or size < 3:
            continue
        x0, y0 = max(0, int(x[line].min()) - 2), max(0, int(y[line].min()) - 2)
        x1, y1 = int((x[line] + w[line]).max()) + 2, int(bottom[line].max()) + 2
        strokes = cv2.dilate(mask[y0:y1, x0:x1], np.ones((3, 3), np.uint8))
        around = pixels[y0:y1, x0:x1][strokes == 0]
        if around.size >= 10 and np.percentile(around, 90) - np.percentile(around, 10) <= _FLAT_BACKGROUND:
            best = size
    return best

"""OpenCV, imported on first use: it takes longer to import than the rest of curate's imaging."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from types import ModuleType

__all__ = ["opencv", "one_opencv_thread"]


@functools.cache
def opencv() -> ModuleType:
    """The ``cv2`` module (decoding grayscale PNGs, area resizing, histograms)."""
    import cv2

    return cv2


@contextlib.contextmanager
def one_opencv_thread() -> Iterator[None]:
    """Run OpenCV on one thread inside the block, then restore its setting.

    Measuring calls OpenCV on small images, where handing work to threads costs
    more than it saves (a fifth of the scan's time, measured); and the scan already
    runs one process per core.
    """
    cv2 = opencv()
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)

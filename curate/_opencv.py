"""OpenCV, imported on first use: it takes longer to import than the rest of curate's imaging."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from types import ModuleType

__all__ = ["opencv", "one_opencv_thread"]


@functools.cache
def opencv() -> ModuleType:
    """The ``cv2`` module (decoding grayscale PNGs, area resizing, histograms)."""
    import cv2

    return cv2


class _OneThread:
    """OpenCV's thread count is process-wide: the first block in sets it to 1, the last out restores it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.before = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        cv2 = opencv()
        with self.lock:
            if self.inside == 0:
                self.before = cv2.getNumThreads()
                cv2.setNumThreads(1)
            self.inside += 1
        try:
            yield
        finally:
            with self.lock:
                self.inside -= 1
                if self.inside == 0:
                    cv2.setNumThreads(self.before)


_one_thread = _OneThread()


def one_opencv_thread() -> contextlib.AbstractContextManager[None]:
    """Run OpenCV on one thread inside the block, then restore its setting.

    Measuring calls OpenCV on small images, where handing work to threads costs
    more than it saves (about a tenth of the measuring time, measured); and the scan already
    runs one process per core. Blocks may overlap in several threads (a threaded
    Dask worker): the setting is restored when the last one leaves.
    """
    return _one_thread()

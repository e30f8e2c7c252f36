from __future__ import annotations

import threading

from curate._opencv import one_opencv_thread, opencv


def test_one_thread_inside_and_the_setting_restored_after_overlapping_blocks():
    cv2 = opencv()
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        first_in, second_in, release = threading.Event(), threading.Event(), threading.Event()
        seen = {}

        def second():
            with one_opencv_thread():
                seen["second"] = cv2.getNumThreads()
                second_in.set()
                release.wait(5)

        with one_opencv_thread():
            seen["first"] = cv2.getNumThreads()
            worker = threading.Thread(target=second)
            worker.start()
            second_in.wait(5)
        seen["after first left"] = cv2.getNumThreads()  # the other block is still inside
        release.set()
        worker.join(5)
        assert seen == {"first": 1, "second": 1, "after first left": 1}
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)

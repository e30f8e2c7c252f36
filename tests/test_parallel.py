import numpy as np
from threadpoolctl import threadpool_info

from curate.parallel import Executor, chunked, map_chunks


def _blas_threads(chunk):
    np.ones((200, 200)) @ np.ones((200, 200))  # a BLAS call, as the measures make
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def _square(chunk):
    return [x * x for x in chunk]


def test_results_come_back_in_submission_order():
    chunks = chunked(list(range(100)), 7)
    out = [x for part in map_chunks(_square, chunks, Executor(workers=2)) for x in part]
    assert out == [x * x for x in range(100)]


def test_local_workers_run_blas_on_one_thread_and_the_parent_keeps_its_own():
    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    per_worker = list(map_chunks(_blas_threads, [[0], [1], [2], [3]], Executor(workers=2)))
    # one worker process per core: a threaded BLAS in each would put several threads on a core
    assert all(threads and set(threads) == {1} for threads in per_worker)
    assert [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"] == before

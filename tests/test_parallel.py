import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

from curate.parallel import Executor, chunked, map_chunks


def _blas_thread_counts():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def _blas_threads(chunk):
    np.ones((200, 200)) @ np.ones((200, 200))  # a BLAS call, as the measures make
    return _blas_thread_counts()


def _square(chunk):
    return [x * x for x in chunk]


def test_results_come_back_in_submission_order():
    chunks = chunked(list(range(100)), 7)
    out = [x for part in map_chunks(_square, chunks, Executor(workers=2)) for x in part]
    assert out == [x * x for x in range(100)]


def test_local_workers_run_blas_on_one_thread_and_the_parent_keeps_its_own():
    before = _blas_thread_counts()
    per_worker = list(map_chunks(_blas_threads, [[0], [1], [2], [3]], Executor(workers=2)))
    # one worker process per core: a threaded BLAS in each would put several threads on a core
    assert all(threads and set(threads) == {1} for threads in per_worker)
    assert _blas_thread_counts() == before


def test_workers_started_by_spawn_also_run_blas_on_one_thread(tmp_path):
    # spawn is the default on macOS (and forkserver on Linux from Python 3.14): such workers
    # do not inherit the parent's limit, so the pool's initializer sets it
    script = tmp_path / "spawned.py"
    script.write_text(
        "import multiprocessing\n"
        "from curate.parallel import Executor, map_chunks\n"
        "from tests.test_parallel import _blas_threads\n"
        "if __name__ == '__main__':\n"
        "    multiprocessing.set_start_method('spawn')\n"
        "    chunks = map_chunks(_blas_threads, [[0], [1], [2]], Executor(workers=2))\n"
        "    print(sorted({threads for part in chunks for threads in part}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=root, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"

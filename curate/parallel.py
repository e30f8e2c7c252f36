"""The executor: local processes by default, Dask distributed when asked.

Work is submitted as chunks of items (hundreds of images per task), because a
task costs about 2 ms on Dask: one task per image would spend more time
scheduling than decoding. Results come back in submission order, so every
executor gives the same table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from curate.errors import CurateError

__all__ = ["Executor", "chunked", "map_chunks"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Executor:
    """Where chunked work runs.

    Parameters
    ----------
    workers : int, optional
        Local worker processes (default: all cores). ``1`` runs in this process.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).
    dask_local : bool
        Start a Dask ``LocalCluster`` with ``workers`` processes for the run.
    """

    workers: int | None = None
    scheduler: str | None = None
    dask_local: bool = False

    def __post_init__(self):
        if self.scheduler and self.dask_local:
            raise CurateError("give either a Dask scheduler address or dask_local, not both")
        if self.workers is not None and self.workers < 1:
            raise CurateError(f"workers must be at least 1, got {self.workers}")

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def kind(self) -> str:
        if self.scheduler:
            return f"dask ({self.scheduler})"
        if self.dask_local:
            return f"dask LocalCluster ({self.n_workers} workers)"
        return "in-process" if self.n_workers == 1 else f"{self.n_workers} local processes"


def chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """Split ``items`` into consecutive chunks of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def map_chunks(
    func: Callable[[Sequence[T]], R],
    chunks: Sequence[Sequence[T]],
    executor: Executor | None = None,
) -> Iterator[R]:
    """Apply ``func`` to every chunk and yield the results in order, as they complete.

    ``func`` must be a module-level function (it is pickled to the workers); it
    receives items, never pixels, so workers read the files themselves.
    """
    executor = executor or Executor()
    if not chunks:
        return
    if executor.scheduler or executor.dask_local:
        yield from _map_dask(func, chunks, executor)
    elif executor.n_workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            yield func(chunk)
    else:
        import multiprocessing

        from threadpoolctl import threadpool_limits

        # One worker process per core, so BLAS and OpenMP run on one thread in each:
        # a threaded BLAS in every worker puts several threads on each core, and a
        # matrix product then waits for threads its neighbours keep busy. Forked
        # workers inherit the limit from here; setting it inside a forked worker
        # instead makes OpenBLAS start threads there that spin for about 0.1 s,
        # taking half a core from the worker's first chunk.
        forked = multiprocessing.get_start_method() == "fork"
        with threadpool_limits(1), ProcessPoolExecutor(
            max_workers=min(executor.n_workers, len(chunks)), initializer=_one_blas_thread, initargs=(forked,)
        ) as pool:
            yield from pool.map(func, chunks)


def _one_blas_thread(forked: bool) -> None:
    """Worker initializer: one BLAS and OpenMP thread in workers that do not inherit the limit.

    A forked worker is limited already (see :func:`map_chunks`); one started by
    spawn or forkserver (the default on macOS, and on Linux from Python 3.14)
    loaded its libraries afresh and is limited here.
    """
    if not forked:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def _map_dask(func: Callable, chunks: Sequence, executor: Executor) -> Iterator[Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise CurateError("Dask is not installed: pip install 'curate[dask]'") from None
    cluster = None
    try:
        if executor.dask_local:
            cluster = LocalCluster(
                n_workers=executor.n_workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            try:
                client = Client(executor.scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise CurateError(f"cannot reach the Dask scheduler at {executor.scheduler}: {exc}") from None
        with client:
            futures = client.map(func, chunks, pure=False)
            for future in futures:
                yield future.result()
                future.release()
    finally:
        if cluster is not None:
            cluster.close()

"""Worker pools for per-subject work: one BLAS/OpenMP thread per worker process.

Without the limit each worker's numpy starts as many threads as there are cores, and on a
2-core machine two workers then run slower than one.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

from threadpoolctl import threadpool_limits


def _single_threaded() -> None:
    threadpool_limits(limits=1)


def process_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, initializer=_single_threaded)

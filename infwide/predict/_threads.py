"""How many BLAS threads ``predict``'s dense linear algebra may use on a shared CPU.

OpenBLAS's threaded LAPACK synchronises its threads thousands of times per factorisation (the
tridiagonal reduction of ``syevd`` is a long chain of threaded level-2 calls). When other
processes keep cores busy, each synchronisation waits for a descheduled thread: on the 2-core
development machine a 3000 x 3000 float32 ``eigh`` took 2 s single-threaded but 19-29 s with
two threads while one other process was running (and 1.1 s with two threads on an idle
machine). So for large problems on NumPy arrays, :func:`blas_threads` counts the runnable
threads of *other* processes at that moment and leaves them their cores:
``threads = cpu_count - others`` (at least 1, at most what BLAS is set to; no limit when nobody
else is running). It uses ``threadpoolctl`` when installed (optional: never a core dependency; scikit-learn
brings it) and otherwise does nothing, as it does nothing on CuPy arrays and
for small problems.
"""
import contextlib
import os
import time

import numpy as np

__all__ = ["blas_threads", "others_running", "MIN_SIZE"]

MIN_SIZE = 1024  # below this side length, threading barely matters and sampling would cost more


def _own_running():
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "R":
            count += 1
    return count


def others_running(samples=5, pause=1e-3):
    """Median number of runnable threads that are not this process's (Linux; else 0)."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(0, running - _own_running()))
        if i + 1 < samples:
            time.sleep(pause)
    return sorted(counts)[len(counts) // 2]


def _current_blas_threads():
    from threadpoolctl import threadpool_info
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
               default=1)


@contextlib.contextmanager
def blas_threads(xp, size):
    """Limit BLAS threads to the cores other processes leave free (see the module docstring).

    Never raises the thread count above what BLAS is already set to use.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is None or xp is not np or size < MIN_SIZE:
        yield
        return
    current = _current_blas_threads()
    threads = current if current < 2 else \
        min(current, max(1, (os.cpu_count() or 1) - others_running()))
    if threads >= current:
        yield
        return
    with threadpool_limits(threads, user_api="blas"):
        yield

"""The timed part of a worker, the same for infwide and for Neural Tangents.

Plain Python and NumPy (both workers import it: the NT worker runs under another interpreter,
which does not have infwide).
"""
import os
import time

import numpy as np

from . import memory

__all__ = ["time_calls", "save_outputs"]


def time_calls(call, repeats, result):
    """One first call (compilation, caches), then ``repeats`` timed calls; fills ``result``
    with wall and CPU times, per-thread CPU time, and peak memory (whole run and timed calls
    alone). Returns the last output."""
    t0 = time.perf_counter()
    out = call()
    result["first_call_s"] = time.perf_counter() - t0
    result["peak_first_call_mb"] = memory.peak_mb()
    steady = memory.reset_peak()
    times, cpu = [], []
    before = memory.thread_cpu()
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = call()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    after = memory.thread_cpu()
    busy = sorted((after[t] - before.get(t, 0.0) for t in after), reverse=True)
    result["thread_cpu_s"] = [round(b / repeats, 4) for b in busy if b > 0.01]
    result["cpu_s"] = cpu
    result.update(times_s=times, median_s=float(np.median(times)),
                  peak_rss_mb=max(result["peak_first_call_mb"], memory.peak_mb()),
                  peak_timed_mb=memory.peak_mb() if steady else None)
    return out


def save_outputs(arrays, folder, result):
    """Each named array as ``folder/NAME.npy``, recorded in ``result['outputs']``."""
    result["outputs"] = {}
    for name, arr in arrays.items():
        path = os.path.join(folder, f"{name}.npy")
        np.save(path, np.asarray(arr))
        result["outputs"][name] = path

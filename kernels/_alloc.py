"""Output arrays whose pages the calling thread has already faulted in.

A fresh large array is mapped lazily: each page is faulted in (and zeroed by the kernel) on
first touch. When that first touch happens in two threads of a parallel region at once, on
this project's 2-core machine about half of the processes ran fc3's fused chain 2-5x slower
than the others, every call (transparent huge pages, concurrent faults in one address space;
bench/NOTES.md, step 16). Touching one entry per page in the calling thread first costs about
1 ms per 8 MB and removes that mode.
"""
import numpy as np

__all__ = ["touched_empty"]

_PAGE = 4096


def touched_empty(shape, dtype):
    """``np.empty(shape, dtype)`` (C order) with every page touched by this thread."""
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    flat[::max(1, _PAGE // out.itemsize)] = 0
    return out

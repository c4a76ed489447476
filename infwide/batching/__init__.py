"""Kernels at scale: tiles of any size, local threads/GPUs or dask, a resumable store.

``batch(kernel_fn, batch_size=0, store=None, executor=None, memory_budget=None,
progress=None)`` returns a kernel function with the signature and results of ``kernel_fn``.
"""
from ._batch import batch, BatchedKernelFn
from ._describe import describe, hash_array
from ._executors import connect
from ._store import clear_store

__all__ = ["batch", "BatchedKernelFn", "describe", "hash_array", "connect", "clear_store"]

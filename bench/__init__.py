"""Benchmarks of infwide against Neural Tangents and the machine: ``python -m bench``.

Nothing here imports infwide or Neural Tangents at import time: ``workloads``, ``build``,
``data`` and ``flops`` are plain Python shared by both workers (``worker`` runs infwide,
``nt_worker`` runs Neural Tangents under another interpreter).
"""

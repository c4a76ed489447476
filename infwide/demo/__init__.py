"""The ``infwide demo``: finite networks trained by gradient descent against the closed-form
infinite-width NTK ensemble, on an embedded 1-d regression."""
from .sine import DemoConfig, DemoResult, run_demo, summary_rows, sine_data, network

__all__ = ["DemoConfig", "DemoResult", "run_demo", "summary_rows", "sine_data", "network"]

"""Largest deviation of infwide from the stored Neural Tangents kernels (spatial layers, models).

    python tests/nt_fixtures/check_spatial_deviation.py
"""
import os

import numpy as np

from infwide import models, stax  # noqa: F401  (the stored expressions name them)

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    worst = 0.0
    for fixture in ("spatial.npz", "models.npz"):
        z = np.load(os.path.join(HERE, fixture))
        for n in sorted({k.split("/")[0] for k in z.files}):
            net = eval(str(z[n + "/expr"]))
            x2 = z[n + "/x2"] if n + "/x2" in z.files else None
            k = net.kernel_fn(z[n + "/x1"], x2)
            for q in ("nngp", "ntk"):
                ref = z[f"{n}/{q}12"] if f"{n}/{q}12" in z.files else z[f"{n}/{q}"]
                worst = max(worst, np.max(np.abs(getattr(k, q) - ref)) / np.max(np.abs(ref)))
    print(f"max |infwide - NT| / max|NT| over all cases: {worst:.1e}")


if __name__ == "__main__":
    main()

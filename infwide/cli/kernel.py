"""``infwide kernel``: NNGP/NTK kernels of a small fully-connected network on built-in data."""
import time

import numpy as np

__all__ = ["add_parser", "run"]


def _builtin_data(n, dim, seed):
    """A small embedded data set: points on a noisy spiral, standardised (no download)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 3 * np.pi, n)
    base = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    proj = rng.standard_normal((2, dim)) / np.sqrt(2)
    x = base @ proj + 0.1 * rng.standard_normal((n, dim))
    return (x - x.mean(0)) / x.std(0)


def run(args):
    from .. import stax
    x = _builtin_data(args.n, args.dim, args.seed).astype(args.dtype)
    layers = []
    for _ in range(args.depth):
        layers += [stax.Dense(args.width, W_std=args.w_std, b_std=args.b_std), stax.Relu()]
    layers.append(stax.Dense(1, W_std=args.w_std, b_std=args.b_std))
    kernel_fn = stax.serial(*layers).kernel_fn
    t0 = time.perf_counter()
    k = kernel_fn(x, None, ("nngp", "ntk"))
    dt = time.perf_counter() - t0
    print(f"infwide kernel: {args.depth}-hidden-layer ReLU network, {args.n} built-in points of "
          f"dimension {args.dim}, {np.dtype(args.dtype).name}")
    for name in ("nngp", "ntk"):
        m = np.asarray(getattr(k, name), dtype=np.float64)
        ev = np.linalg.eigvalsh(m)
        print(f"  {name:4s}: shape {m.shape}, diagonal mean {np.diag(m).mean():.6f}, "
              f"off-diagonal mean {(m.sum() - np.trace(m)) / (m.size - len(m)):.6f}, "
              f"eigenvalues [{ev[0]:.3e}, {ev[-1]:.3e}], symmetric {np.allclose(m, m.T)}")
    print(f"  computed in {dt * 1e3:.1f} ms")
    return 0


def add_parser(sub):
    k = sub.add_parser("kernel", help="NNGP/NTK of a fully-connected network on built-in data")
    k.add_argument("--n", type=int, default=200, help="number of built-in points")
    k.add_argument("--dim", type=int, default=16, help="input dimension")
    k.add_argument("--depth", type=int, default=3, help="hidden layers")
    k.add_argument("--width", type=int, default=512, help="width of the finite network")
    k.add_argument("--w-std", type=float, default=1.5)
    k.add_argument("--b-std", type=float, default=0.05)
    k.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    k.add_argument("--seed", type=int, default=0)
    k.set_defaults(func=run)

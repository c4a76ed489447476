"""``infwide kernel``: NNGP/NTK kernels of a small fully-connected network on built-in data."""
import time

import numpy as np

from ._args import positive_int

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
    client = _client(args)
    try:
        if args.store or args.workers or client is not None or args.batch_size:
            kernel_fn = _batched(kernel_fn, args, client)
        t0 = time.perf_counter()
        k = kernel_fn(x, None, ("nngp", "ntk"))
        dt = time.perf_counter() - t0
    finally:
        if client is not None:
            client.close()
    print(f"infwide kernel: {args.depth}-hidden-layer ReLU network, {args.n} built-in points of "
          f"dimension {args.dim}, {np.dtype(args.dtype).name}")
    for name in ("nngp", "ntk"):
        m = np.asarray(getattr(k, name), dtype=np.float64)
        ev = np.linalg.eigvalsh(m)
        print(f"  {name:4s}: shape {m.shape}, diagonal mean {np.diag(m).mean():.6f}, "
              f"off-diagonal mean {(m.sum() - np.trace(m)) / (m.size - len(m)):.6f}, "
              f"eigenvalues [{ev[0]:.3e}, {ev[-1]:.3e}], symmetric {np.allclose(m, m.T)}")
    print(f"  computed in {dt * 1e3:.1f} ms")
    if args.store:
        print(f"  stored in {args.store} (memory-mapped result in {args.store}/result/)")
    return 0


def _client(args):
    """A dask client for --scheduler (waiting for --workers workers), or None."""
    if not args.scheduler:
        return None
    from ..batching import connect
    client = connect(args.scheduler, timeout=args.scheduler_timeout)
    if args.workers:
        try:
            client.wait_for_workers(args.workers, timeout=args.scheduler_timeout)
        except (TimeoutError, OSError) as e:
            n = len(client.scheduler_info().get("workers", {}))
            client.close()
            raise OSError(f"--workers {args.workers}: only {n} dask worker(s) joined "
                          f"{args.scheduler} within {args.scheduler_timeout:g} s") from e
    return client


def _batched(kernel_fn, args, client):
    """The kernel function in tiles: --store (resuming unless --no-resume), --workers local
    threads or the --scheduler's cluster, a progress bar (log lines when not a terminal)."""
    from ..batching import batch, clear_store
    if args.store and not args.resume:
        clear_store(args.store)
    executor = client if client is not None else args.workers
    return batch(kernel_fn, batch_size=args.batch_size, store=args.store, executor=executor,
                 progress=True)


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
    k.add_argument("--store", metavar="DIR", help="compute in tiles kept in DIR; a killed run "
                   "resumes where it stopped (a DIR made for other settings is refused)")
    k.add_argument("--no-resume", dest="resume", action="store_false",
                   help="with --store: remove the store's files first and start over")
    k.add_argument("--workers", type=positive_int, metavar="N",
                   help="local worker threads (default: all cores); with --scheduler, wait "
                   "for N dask workers")
    k.add_argument("--scheduler", metavar="ADDRESS", help="run the tiles on the dask "
                   "scheduler at ADDRESS, e.g. tcp://10.0.0.5:8786 (needs infwide[distributed])")
    k.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="give up on an unreachable scheduler after this long (default 10)")
    k.add_argument("--batch-size", type=int, default=0, metavar="B",
                   help="points per tile along each axis (default: from the free memory)")
    k.set_defaults(func=run)

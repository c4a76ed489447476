"""Kernel functions and predictors called from 8 threads at once give results identical
(bit for bit) to serial calls: the FC fused path, the spatial fused path, the layer-by-layer
path, gradient_descent_mse, gp_inference and the ensemble.

Numba's parallel routines run on its threading layer; with 'omp' or 'tbb' concurrent calls
from several Python threads are safe. The 'workqueue' layer is not thread-safe: Numba aborts
the process when two threads enter a parallel region at once. What infwide does about it is
tested at the end (in a subprocess forced onto 'workqueue')."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from infwide import models, predict, stax
from infwide.stax._fusion import fusion_disabled

N_THREADS = 8
HERE = os.path.dirname(os.path.abspath(__file__))


def _in_threads(fn, args_list):
    """Run fn(*args) for every args at once (released together by a barrier)."""
    barrier = threading.Barrier(len(args_list))
    out, errors = [None] * len(args_list), []

    def work(i, args):
        try:
            barrier.wait()
            out[i] = fn(*args)
        except BaseException as e:   # collected: the test fails with it below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return out


def _unfused(net):
    def call(*args):
        with fusion_disabled():
            return net.kernel_fn(*args)
    return call


def _inputs(shape, n_sets):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((shape[0] + i,) + shape[1:]) for i in range(n_sets)]


FC_NET = models.FC(3, W_std=1.5, b_std=0.1)
CNN_NET = stax.serial(stax.Conv(4, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
                      stax.AvgPool((2, 2), strides=(2, 2)),
                      stax.Conv(4, (2, 2), padding="CIRCULAR"), stax.Relu(),
                      stax.GlobalAvgPool(), stax.Dense(1))
CASES = {
    "fc-fused": (FC_NET.kernel_fn, (40, 6)),
    "fc-unfused": (_unfused(FC_NET), (40, 6)),
    "conv-fused": (CNN_NET.kernel_fn, (5, 6, 6, 2)),
    "conv-unfused": (_unfused(CNN_NET), (5, 6, 6, 2)),
    "conv-flatten-fused": (models.CNN(2, channels=3).kernel_fn, (6, 5, 5, 2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("x2", [False, True], ids=["x2=None", "x2"])
def test_kernel_fn_threads_equal_serial(case, x2):
    fn, shape = CASES[case]
    xs = _inputs(shape, N_THREADS // 2)
    args = [(x, xs[(i + 1) % len(xs)][:3] if x2 else None, ("nngp", "ntk"))
            for i, x in enumerate(xs + xs)]   # each input twice: same call in two threads
    serial = [fn(*a) for a in args]
    parallel = _in_threads(fn, args)
    for s, p in zip(serial, parallel):
        for a, b in zip(s, p):
            np.testing.assert_array_equal(a, b)


def test_mixed_networks_threads_equal_serial():
    """Different networks, dtypes and input sizes interleaved in the same 8 threads."""
    rng = np.random.default_rng(3)
    xf, xc = rng.standard_normal((30, 5)), rng.standard_normal((4, 5, 5, 2))
    lbl = stax.serial(stax.Dense(3), stax.Erf(), stax.Dense(3), stax.LayerNorm(),
                      stax.Gelu(), stax.Dense(1)).kernel_fn
    calls = [(CASES["fc-fused"][0], xf), (CASES["conv-fused"][0], xc),
             (lbl, xf.astype(np.float32)), (lbl, xf),
             (CASES["conv-flatten-fused"][0], xc.astype(np.float32)),
             (CASES["fc-fused"][0], xf.astype(np.float32)), (CASES["conv-fused"][0], xc[:2]),
             (CASES["conv-flatten-fused"][0], xc[:3])]
    serial = [fn(x, None, "ntk") for fn, x in calls]
    parallel = _in_threads(lambda fn, x: fn(x, None, "ntk"), calls)
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(s, p)


def test_fusion_disabled_is_local_to_its_thread():
    """While one thread is inside fusion_disabled(), fused calls in other threads still fuse
    (else they would take the layer-by-layer path: equal only to rounding)."""
    x = np.random.default_rng(4).standard_normal((30, 5))
    fused_ref = FC_NET.kernel_fn(x, None, "ntk")
    inside, release = threading.Event(), threading.Event()

    def hold():
        with fusion_disabled():
            inside.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        inside.wait(30)
        from infwide.stax._fusion import fusion_enabled
        assert fusion_enabled(), "another thread's fusion_disabled() turned fusion off here"
        np.testing.assert_array_equal(FC_NET.kernel_fn(x, None, "ntk"), fused_ref)
    finally:
        release.set()
        t.join()


def _train():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((25, 4)), rng.standard_normal((25, 2))
    xt = rng.standard_normal((9, 4))
    return x, y, xt


def test_predictors_threads_equal_serial():
    x, y, xt = _train()
    k = FC_NET.kernel_fn(x, None, ("nngp", "ntk"))
    ktt = FC_NET.kernel_fn(xt, x, ("nngp", "ntk"))
    kts = FC_NET.kernel_fn(xt, None, "nngp")
    ts = np.array([0.1, 1.0, 10.0])

    def gd(i):   # a fresh predictor per call, and the same one shared (its caches) below
        p = predict.gradient_descent_mse(k.ntk, y, learning_rate=1.0, diag_reg=1e-4 * (i % 2))
        return p(ts if i % 2 else None, 0.0, 0.0, ktt.ntk)

    def gp(i):
        p = predict.gp_inference(k.nngp, y, diag_reg=1e-3 * (1 + i % 2))
        return p(("nngp",), ktt.nngp, kts)

    def ens(i):
        p = predict.gradient_descent_mse_ensemble(FC_NET.kernel_fn, x, y, diag_reg=1e-4)
        return p(ts if i % 2 else None, xt, ("nngp", "ntk"), compute_cov=bool(i % 4 < 2))

    for fn in (gd, gp, ens):
        serial = [fn(i) for i in range(N_THREADS)]
        parallel = _in_threads(fn, [(i,) for i in range(N_THREADS)])
        for s, p in zip(serial, parallel):
            for a, b in zip(_leaves(s), _leaves(p)):
                np.testing.assert_array_equal(a, b)


def test_shared_predictor_threads_equal_serial():
    """One predictor (with its cached factorisations) called from 8 threads at once."""
    x, y, xt = _train()
    k = FC_NET.kernel_fn(x, None, "ntk")
    ktt = FC_NET.kernel_fn(xt, x, "ntk")
    ts = [None, 0.5, np.array([1.0, 3.0]), 2.0]
    shared = predict.gradient_descent_mse(k, y, diag_reg=1e-3)
    ens = predict.gradient_descent_mse_ensemble(FC_NET.kernel_fn, x, y, diag_reg=1e-3)
    parallel = _in_threads(lambda t: (shared(t, 0.0, 0.0, ktt), ens(t, xt, "ntk", True)),
                           [(ts[i % 4],) for i in range(N_THREADS)])
    fresh = predict.gradient_descent_mse(k, y, diag_reg=1e-3)
    fresh_ens = predict.gradient_descent_mse_ensemble(FC_NET.kernel_fn, x, y, diag_reg=1e-3)
    for i, p in enumerate(parallel):
        s = (fresh(ts[i % 4], 0.0, 0.0, ktt), fresh_ens(ts[i % 4], xt, "ntk", True))
        for a, b in zip(_leaves(s), _leaves(p)):
            np.testing.assert_array_equal(a, b)


def _leaves(obj):
    if isinstance(obj, (tuple, list)):
        return [leaf for o in obj for leaf in _leaves(o)]
    return [np.asarray(obj)]


def test_threading_layer_is_thread_safe():
    """After a parallel call, Numba reports a thread-safe layer here ('omp' or 'tbb')."""
    import numba
    FC_NET.kernel_fn(np.random.default_rng(0).standard_normal((40, 6)), None, "ntk")
    assert numba.threading_layer() in ("omp", "tbb")


WORKQUEUE_CHILD = """
import threading, numpy as np, numba
from infwide import models, stax
fc = models.FC(3, W_std=1.5)
cnn = stax.serial(stax.Conv(4, (3, 3), padding="SAME"), stax.Relu(), stax.GlobalAvgPool(),
                  stax.Dense(1))
xf = [np.random.default_rng(i).standard_normal((200, 6)) for i in range(8)]
xc = [np.random.default_rng(i).standard_normal((5, 6, 6, 2)) for i in range(8)]
ref = [(fc.kernel_fn(a, None, "ntk"), cnn.kernel_fn(b, None, "ntk")) for a, b in zip(xf, xc)]
out, barrier = [None] * 8, threading.Barrier(8)
def work(i):
    barrier.wait()
    for _ in range(3):
        out[i] = (fc.kernel_fn(xf[i], None, "ntk"), cnn.kernel_fn(xc[i], None, "ntk"))
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
same = all(np.array_equal(a, b) for o, r in zip(out, ref) for a, b in zip(o, r))
print(numba.threading_layer(), same)
"""


def test_workqueue_layer_calls_are_serialised_not_aborted():
    """Forced onto 'workqueue', 8 threads of fused FC and conv calls neither abort the
    process (Numba's "Concurrent access has been detected") nor change the results."""
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    r = subprocess.run([sys.executable, "-c", WORKQUEUE_CHILD], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["workqueue", "True"]

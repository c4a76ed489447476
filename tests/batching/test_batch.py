"""infwide.batch: batched == unbatched (float64) for odd sizes, every get, spatial outputs in
both forms, every executor (local threads, a dask.distributed LocalCluster)."""
import subprocess
import sys
import time

import numpy as np
import pytest

import infwide
from infwide import stax, batch
from infwide.batching import BatchedKernelFn, connect
from infwide.batching._plan import edges, make_plan, mirror_axes
from infwide.stax._inputs import inputs_to_kernel

GETS = [None, "nngp", "ntk", "cov1", "cov2", ("ntk", "nngp"), ("cov2", "nngp", "cov1"),
        ("cov1", "cov2")]


def fc_net():
    return stax.serial(stax.Dense(64, W_std=1.5, b_std=0.3), stax.Relu(),
                       stax.Dense(32, W_std=1.2, b_std=0.1), stax.Relu(),
                       stax.Dense(8, W_std=1.1, b_std=0.05))


NET = fc_net()


def full_spatial_kernel_fn(x1, x2=None, get=None):
    """A generic kernel function (not a Layer) whose outputs keep the full spatial covariance
    (N1, N2, H, H', W, W'): the network above applied to the full input covariance."""
    k = inputs_to_kernel(x1, x2, diagonal_spatial=False, compute_ntk=True)
    return NET.kernel_fn(k, get=get)


def diagonal_spatial_kernel_fn(x1, x2=None, get=None):
    """The same network on the spatial diagonal only: outputs (N1, N2, H, W)."""
    k = inputs_to_kernel(x1, x2, diagonal_spatial=True, compute_ntk=True)
    return NET.kernel_fn(k, get=get)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((13, 6)), rng.standard_normal((8, 6))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(8)
    return rng.standard_normal((7, 4, 3, 2)), rng.standard_normal((5, 4, 3, 2))


def assert_close(o, r, name=""):
    """Equal to rounding. At coincident points (x == x', the diagonal of a square kernel) the
    arc-cosine step amplifies rounding to about sqrt(eps): theta = atan2(sqrt(k11 k22 - k12^2),
    k12) where k11 k22 - k12^2 is a cancellation of O(eps); there 1e-7 relative, elsewhere
    1e-12."""
    assert o.shape == r.shape and o.dtype == r.dtype, name
    o, r = np.asarray(o), np.asarray(r)
    np.testing.assert_allclose(o, r, rtol=1e-7, atol=1e-14, err_msg=name)
    if o.ndim >= 2 and o.shape[0] == o.shape[1]:
        off = ~np.eye(o.shape[0], dtype=bool)
        np.testing.assert_allclose(o[off], r[off], rtol=1e-12, atol=1e-14, err_msg=name)
    else:
        np.testing.assert_allclose(o, r, rtol=1e-12, atol=1e-14, err_msg=name)


def assert_same(out, ref, get):
    if get is None:
        assert isinstance(out, infwide.Kernel)
        for f in ("nngp", "ntk", "cov1", "cov2"):
            r, o = getattr(ref, f), getattr(out, f)
            assert (r is None) == (o is None), f
            if r is not None:
                assert_close(o, r, f)
        assert out.shape1 == ref.shape1 and out.shape2 == ref.shape2
        assert out.x1_is_x2 == ref.x1_is_x2 and out.diagonal_spatial == ref.diagonal_spatial
        return
    if isinstance(get, str):
        out, ref = (out,), (ref,)
    else:
        assert type(out) is type(ref) and out._fields == ref._fields
    for o, r in zip(out, ref):
        assert (r is None) == (o is None)
        if r is not None:
            assert_close(o, r)


@pytest.mark.parametrize("get", GETS)
@pytest.mark.parametrize("square", [True, False])
def test_batched_equals_unbatched_every_get(data, get, square):
    x1, x2 = data
    x2 = None if square else x2
    ref = NET.kernel_fn(x1, x2, get)
    for bs in (1, 4, 5, 13, 40):
        assert_same(batch(NET.kernel_fn, batch_size=bs, executor=2)(x1, x2, get), ref, get)


@pytest.mark.parametrize("executor", [None, 1, 3])
def test_local_executors(data, executor):
    x1, x2 = data
    for xb in (None, x2):
        assert_same(batch(NET, batch_size=3, executor=executor)(x1, xb), NET.kernel_fn(x1, xb),
                    None)


@pytest.mark.parametrize("fn", [full_spatial_kernel_fn, diagonal_spatial_kernel_fn],
                         ids=["full", "diagonal"])
@pytest.mark.parametrize("square", [True, False])
def test_spatial_outputs(images, fn, square):
    """Spatial kernels (N1, N2, H, H', W, W') and (N1, N2, H, W): the mirrored lower
    triangle must swap each spatial pair of axes as well as the batch axes."""
    x1, x2 = images
    x2 = None if square else x2
    ref = fn(x1, x2)
    assert ref.nngp.ndim == (6 if fn is full_spatial_kernel_fn else 4)
    for bs in (2, 3):
        assert_same(batch(fn, batch_size=bs, executor=2)(x1, x2), ref, None)
        assert_same(batch(fn, batch_size=bs)(x1, x2, ("ntk", "cov1")),
                    fn(x1, x2, ("ntk", "cov1")), ("ntk", "cov1"))


def test_stax_spatial_network(images):
    """A stax network on images (NT keeps the full spatial covariance of a spatial output)."""
    x1, x2 = images
    for xb in (None, x2):
        ref = NET.kernel_fn(x1, xb)
        assert ref.nngp.ndim == 6
        assert_same(batch(NET, batch_size=2)(x1, xb), ref, None)


def cnn(readout):
    """Conv/pool networks: GlobalAvgPool needs the full spatial covariance all the way, Flatten
    only its diagonal; without a readout the output is spatial (full covariance)."""
    body = [stax.Conv(6, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
            stax.AvgPool((2, 2), padding="SAME"), stax.Conv(5, (2, 2), padding="CIRCULAR"),
            stax.Relu()]
    tail = {"gap": [stax.GlobalAvgPool(), stax.Dense(2)], "flatten": [stax.Flatten(),
            stax.Dense(2)], "spatial": []}[readout]
    return stax.serial(*body, *tail)


@pytest.mark.parametrize("readout", ["gap", "flatten", "spatial"])
def test_cnn(readout):
    rng = np.random.default_rng(9)
    x1, x2 = rng.standard_normal((7, 5, 4, 2)), rng.standard_normal((4, 5, 4, 2))
    net = cnn(readout)
    for xb in (None, x2):
        ref = net.kernel_fn(x1, xb)
        assert ref.nngp.ndim == (6 if readout == "spatial" else 2)
        assert_same(batch(net, batch_size=3, executor=2)(x1, xb), ref, None)
        assert_same(batch(net, memory_budget="2MB")(x1, xb, "ntk"), ref.ntk, "ntk")


def test_float32_and_auto_tile_size(data):
    x1, x2 = data
    for xb in (None, x2.astype(np.float32)):
        out = batch(NET, memory_budget="1MB")(x1.astype(np.float32), xb)
        ref = NET.kernel_fn(x1.astype(np.float32), xb)
        assert out.ntk.dtype == np.float32
        np.testing.assert_allclose(out.ntk, ref.ntk, rtol=1e-6)
    # a budget this small forces many tiles; the result is still the unbatched one
    small = batch(NET, memory_budget=3000, executor=1)
    assert_same(small(x1, None), NET.kernel_fn(x1, None), None)


def test_mixed_dtypes_and_integer_inputs(data):
    """float32 x1 with float64 x2 computes in float64, as the unbatched kernel does."""
    x1, x2 = data
    a = x1.astype(np.float32)
    ref = NET.kernel_fn(a, x2)
    assert ref.nngp.dtype == np.float64
    assert_same(batch(NET, batch_size=4)(a, x2), ref, None)
    xi = np.arange(30).reshape(10, 3) % 7
    assert_same(batch(NET, batch_size=3)(xi), NET.kernel_fn(xi), None)


def test_plan_covers_every_pair_once():
    for n1, n2, b1, b2, sym in [(13, 8, 4, 3, False), (13, 13, 5, 5, True), (1, 7, 1, 2, False),
                                (10, 10, 10, 10, True)]:
        tiles, r, c = make_plan(n1, n2, b1, b2, sym, ("nngp", "cov1", "cov2"))
        cover = np.zeros((n1, n2), int)
        for t in tiles:
            cover[t.rows[0]:t.rows[1], t.cols[0]:t.cols[1]] += 1
            if t.mirror:
                cover[t.cols[0]:t.cols[1], t.rows[0]:t.rows[1]] += 1
        assert (cover == 1).all(), (n1, n2, b1, b2, sym)
        assert sum("cov1" in t.fields for t in tiles) == len(r) - 1
        assert sum("cov2" in t.fields for t in tiles) == (0 if sym else len(c) - 1)
    assert edges(10, 4) == [0, 3, 7, 10] and edges(3, 100) == [0, 3]
    assert mirror_axes(6, 2, True) == (1, 0, 3, 2, 5, 4)
    assert mirror_axes(4, 2, False) == (1, 0, 2, 3)


def test_bad_arguments(data):
    x1, _ = data
    with pytest.raises(ValueError, match="batch_size"):
        batch(NET, batch_size=-1)
    with pytest.raises(ValueError, match="memory_budget"):
        batch(NET, memory_budget="lots")
    with pytest.raises(TypeError, match="executor"):
        batch(NET, executor="cluster")(x1)
    with pytest.raises(ValueError, match="unknown `get` 'nngpp'"):
        batch(NET)(x1, None, "nngpp")
    with pytest.raises(ValueError, match="same shape apart from the batch"):
        batch(NET)(x1, x1[:, :3])
    with pytest.raises(TypeError, match="cannot start from a Kernel"):
        batch(NET)(NET.kernel_fn(x1))
    with pytest.raises(MemoryError, match="budget"):
        batch(NET, memory_budget=10)(x1)


def test_neural_tangents_spellings(data):
    """NT's batch(kernel_fn, batch_size, device_count, store_on_device) keywords work."""
    x1, x2 = data
    f = batch(NET.kernel_fn, batch_size=4, device_count=0, store_on_device=False)
    assert_same(f(x1, x2), NET.kernel_fn(x1, x2), None)
    assert_same(batch(NET, 5, device_count=2)(x1), NET.kernel_fn(x1), None)
    with pytest.raises(ValueError, match="device_count"):
        batch(NET, device_count=-2)


def test_repr_and_wrapped(data):
    f = batch(NET, batch_size=3)
    assert isinstance(f, BatchedKernelFn) and f.wrapped_kernel_fn == NET.kernel_fn
    assert "batch_size=3" in repr(f)
    # batching a batched function changes nothing
    assert_same(batch(f, batch_size=5)(data[0]), NET.kernel_fn(data[0]), None)


# -- dask.distributed --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    # workers in this process but talking TCP on loopback: tasks, scattered inputs and
    # results are serialised as for a remote cluster, without starting new interpreters
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       protocol="tcp://", host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_equals_local(dask_client, data, images, tmp_path):
    """Two dask workers on loopback give the local executor's kernel (Layers are serialised
    to the workers; the inputs are scattered once)."""
    x1, x2 = data
    for xb in (None, x2):
        for get in (None, ("ntk", "cov2")):
            local = batch(NET, batch_size=4, executor=1)(x1, xb, get)
            assert_same(batch(NET, batch_size=4, executor=dask_client)(x1, xb, get), local, get)
    # workers write the tiles into a shared store; the driver assembles them
    im1, im2 = images
    out = batch(full_spatial_kernel_fn, batch_size=3, executor=dask_client,
                store=tmp_path / "s")(im1, im2)
    assert_same(out, full_spatial_kernel_fn(im1, im2), None)
    # the default budget comes from the workers' memory limits
    assert_same(batch(NET, executor=dask_client)(x1), NET.kernel_fn(x1), None)


def test_unreachable_scheduler_fails_fast():
    pytest.importorskip("distributed")
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(OSError, match=f"no dask scheduler answered at 'tcp://127.0.0.1:{port}'"):
        connect(f"tcp://127.0.0.1:{port}", timeout=1.5)
    assert time.monotonic() - t0 < 15


def test_missing_dask_names_the_extra():
    """Without dask installed, asking for it names the extra (run in a fresh interpreter where
    importing `distributed` fails)."""
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from infwide.batching import connect\n"
            "try:\n    connect('tcp://127.0.0.1:1')\n"
            "except ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout
    assert "ERR" in out and 'infwide[distributed]' in out

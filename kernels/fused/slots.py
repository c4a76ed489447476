"""Plane slots and registers of the fused engine: what residual branches add to a chain.

A *slot* keeps one copy of a group's working planes (K and Theta, the scratch layout of
``planes``) within a block: ``FanOut`` saves the block input, each branch starts again from
it, and the fan-in combines the branch results entry by entry (every entry of a sum, product
or channel concatenation of branches depends on the same entry of each branch only:
Novak et al. 2019, NT's ``FanInSum``/``FanInProd``/``FanInConcat``):

    sum, concat:  K = alpha K_s + beta K,     Theta = alpha Theta_s + beta Theta
    product:      K = K_s K,                  Theta = Theta_s K + K_s Theta

A *register* is a compact layout of the next block (``emit``), written by a transition
(``SCATTER``): one per value that crosses a block boundary (a down-sampling residual block
sends its main path and its shortcut).
"""
from .._jit import cpu_jit
from .emit import pool_scatter_plane
from .planes import tall_rows

__all__ = ["save_slot", "restore_slot", "combine_slot", "scatter_group"]


@cpu_jit
def save_slot(K, T, slot, phs, n, pw, P, has_ntk):
    """Copy the group's planes (rings included) into ``slot`` (2, L)."""
    m = (tall_rows(phs, n, P) + 2 * P) * (pw + 2 * P)
    slot[0, :m] = K[:m]
    if has_ntk:
        slot[1, :m] = T[:m]


@cpu_jit
def restore_slot(K, T, slot, phs, n, pw, P, has_ntk):
    """The working planes become ``slot`` again."""
    m = (tall_rows(phs, n, P) + 2 * P) * (pw + 2 * P)
    K[:m] = slot[0, :m]
    if has_ntk:
        T[:m] = slot[1, :m]


@cpu_jit
def combine_slot(K, T, slot, phs, n, pw, P, mode, alpha, beta, has_ntk):
    """Fan-in of the working planes with ``slot`` (formulas above; ``mode`` 1: product)."""
    S = pw + 2 * P
    m = tall_rows(phs, n, P) * S
    k, ks = K[P * S:P * S + m], slot[0, P * S:P * S + m]
    t, ts = T[P * S:P * S + m], slot[1, P * S:P * S + m]
    if mode == 1:
        if has_ntk:
            for i in range(m):
                t[i] = ts[i] * k[i] + ks[i] * t[i]
        for i in range(m):
            k[i] = ks[i] * k[i]
    else:
        for i in range(m):
            k[i] = alpha * ks[i] + beta * k[i]
        if has_ntk:
            for i in range(m):
                t[i] = alpha * ts[i] + beta * t[i]


@cpu_jit
def scatter_group(K, T, P, dw, dhs, phs, n, pw, is_self, prow, dst, coff, has_ntk):
    """Pool-scatter every plane of a group into the register ``dst`` (2, comp) of the next
    block; a self pair also scatters the mirror plane (-d), which equals plane d."""
    S = pw + 2 * P
    r0 = 0
    for g in range(n):
        dh, ph = dhs[g], phs[g]
        Kv, Tv = K[r0 * S:], T[r0 * S:]
        pool_scatter_plane(Kv, P, dh, dw, ph, pw, prow, dst[0], coff)
        if has_ntk:
            pool_scatter_plane(Tv, P, dh, dw, ph, pw, prow, dst[1], coff)
        if is_self and (dh != 0 or dw != 0):
            pool_scatter_plane(Kv, P, -dh, -dw, ph, pw, prow, dst[0], coff)
            if has_ntk:
                pool_scatter_plane(Tv, P, -dh, -dw, ph, pw, prow, dst[1], coff)
        r0 += ph + P

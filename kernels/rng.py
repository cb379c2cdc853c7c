"""Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011, Random123) and normals.

Every random number of the model is a pure function of (seed, path, month, slot), so a path's
numbers do not depend on blocks, workers, threads or the target (CPU or CUDA).

The functions below are written once, in plain Python on ``np.uint64`` values, so that the same
source serves three callers: numpy (vectorized over arrays, :func:`normals`), ``numba.njit`` and
``numba.cuda.jit(device=True)`` (scalars; the kernels compile them). Words are held in uint64
holding values below 2**32, which keeps the 32 x 32 -> 64 bit products exact on every target.

Counter and key
---------------
key     = (seed mod 2**32, seed div 2**32)                 (seed in [0, 2**64))
counter = (path mod 2**32, path div 2**32, month, slot div 4)
One Philox call gives four 32-bit words, hence four normals: slots 4j..4j+3 share a call.
Slot ``k`` uses the words ``(2i, 2i+1)`` with ``i = (k mod 4) div 2`` as uniforms
``u = (w + 1/2) / 2**32`` (never 0 or 1), and Box-Muller gives
``sqrt(-2 ln u1) cos(2 pi u2)`` for even ``k`` and ``... sin(2 pi u2)`` for odd ``k``.

Slot layout
-----------
Month 0 holds the draws made once per path (C channels, N nodes, F = 1 + R factors):

====================================  =================================================
slot                                  draw
====================================  =================================================
0                                     g_0 when tension starts ``stationary`` (else unused)
1 + c*F + f                           zf[c, f], common exposure factor f of channel c
1 + C*F + c*N + n                     ze[c, n], idiosyncratic exposure of node n
====================================  =================================================

Month t = 1..T holds the monthly draws:

====================================  =================================================
slot                                  draw
====================================  =================================================
0                                     zg_t, the tension innovation
1 + c                                 zc[c], channel c's own innovation (before Cholesky)
1 + C + c                             zs[c], the severity draw if channel c starts an
                                      episode this month (owned even when unused)
====================================  =================================================

This module imports numpy only.
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = [
    "box_muller",
    "monthly_slots",
    "normal",
    "normals",
    "path_slots",
    "philox4x32",
    "split_seed",
]

MASK32 = np.uint64(0xFFFFFFFF)
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
SHIFT32 = np.uint64(32)
TWO_PI = 2.0 * math.pi
INV_2_32 = 1.0 / 4294967296.0


def philox_round(c0, c1, c2, c3, k0, k1):
    """One Philox4x32 round on words held in uint64."""
    p0 = PHILOX_M0 * c0
    p1 = PHILOX_M1 * c2
    hi0 = p0 >> SHIFT32
    lo0 = p0 & MASK32
    hi1 = p1 >> SHIFT32
    lo1 = p1 & MASK32
    return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10: counter (c0..c3) and key (k0, k1), all uint64 below 2**32, to four words.

    The loop is unrolled so that numba's CUDA target sees straight-line code.
    """
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    return philox_round(c0, c1, c2, c3, k0, k1)


def box_muller(w_a, w_b):
    """Two independent standard normals (cos part, sin part) from two 32-bit words."""
    u1 = (w_a + 0.5) * INV_2_32
    u2 = (w_b + 0.5) * INV_2_32
    r = np.sqrt(-2.0 * np.log(u1))
    theta = TWO_PI * u2
    return r * np.cos(theta), r * np.sin(theta)


def split_seed(seed: int) -> tuple[np.uint64, np.uint64]:
    """The Philox key (k0, k1) of a seed in [0, 2**64)."""
    # operator.index, not int(): a float or string seed must fail, not be silently truncated.
    try:
        value = operator.index(seed)
    except TypeError:
        value = -1
    if not 0 <= value < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return np.uint64(value & 0xFFFFFFFF), np.uint64(value >> 32)


def normal(k0, k1, path, month, slot):
    """The standard normal for one (path, month, slot) under key (k0, k1); scalar, for kernels.

    Kernels that need the four slots of one call should call :func:`philox4x32` once and
    :func:`box_muller` twice instead; this function is the definition they must match.
    """
    p = np.uint64(path)
    w0, w1, w2, w3 = philox4x32(
        p & MASK32, p >> SHIFT32, np.uint64(month), np.uint64(slot // 4), k0, k1
    )
    j = slot % 4
    if j < 2:
        z_cos, z_sin = box_muller(w0, w1)
    else:
        z_cos, z_sin = box_muller(w2, w3)
    return z_cos if j % 2 == 0 else z_sin


def monthly_slots(n_channels: int) -> int:
    """Slots used in each month t >= 1: tension, channel innovations, severities."""
    return 1 + 2 * n_channels


def path_slots(n_channels: int, n_factors: int, n_nodes: int) -> int:
    """Slots used in month 0 (per-path draws)."""
    return 1 + n_channels * n_factors + n_channels * n_nodes


def normals(seed: int, paths: np.ndarray, months: np.ndarray, n_slots: int) -> np.ndarray:
    """Standard normals for every (path, month, slot < n_slots), vectorized in numpy.

    Parameters
    ----------
    seed : int
        In [0, 2**64).
    paths, months : array_like of int
        Global path indices and month indices (0 for per-path draws, 1..T monthly).
    n_slots : int
        Slots 0..n_slots-1 are returned.

    Returns
    -------
    ndarray, shape (len(paths), len(months), n_slots), float64

    Examples
    --------
    >>> z = normals(1, np.arange(3), np.arange(1, 3), 5)
    >>> z.shape
    (3, 2, 5)
    >>> bool(z[1, 0, 2] == normals(1, [1], [1], 5)[0, 0, 2])
    True
    """
    k0, k1 = split_seed(seed)
    p = np.asarray(paths, dtype=np.uint64)[:, None, None]
    m = np.asarray(months, dtype=np.uint64)[None, :, None]
    calls = np.arange((n_slots + 3) // 4, dtype=np.uint64)[None, None, :]
    p, m, calls = np.broadcast_arrays(p, m, calls)
    w0, w1, w2, w3 = philox4x32(p & MASK32, p >> SHIFT32, m, calls, k0, k1)
    a_cos, a_sin = box_muller(w0, w1)
    b_cos, b_sin = box_muller(w2, w3)
    out = np.stack([a_cos, a_sin, b_cos, b_sin], axis=-1)
    return out.reshape(*out.shape[:2], -1)[:, :, :n_slots]

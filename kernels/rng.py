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

Month :data:`CREDIT_MONTH` (2**32 - 1, beyond any horizon) holds the credit-cycle factors:
slot y is ``Z_y``, the path's factor of year y (drawn only when a portfolio class has rho > 0).

This module imports numpy only.
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = [
    "CREDIT_MONTH",
    "box_muller",
    "cos_sin_turns",
    "log_uniform",
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


# Box-Muller's logarithm and sine/cosine in plain arithmetic (no libm call): the CPU compiler then
# vectorizes the transform across paths (numba has no vector math library here), and numpy, the
# CPU and CUDA compute the same formula. Comparisons turned into 0.0/1.0 factors stand in for
# branches, so that one source runs on scalars and on numpy arrays alike.

# (2**b, 2**-b, b): halving steps that bring w + 1/2 in [1/2, 2**32) into [1/2, 2), exactly
_LOG_STEPS = tuple((2.0**b, 2.0**-b, float(b)) for b in (16, 8, 4, 2, 1))
_SQRT_HALF = math.sqrt(0.5)
_LN2 = math.log(2.0)
# ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716 for m in [sqrt(1/2), sqrt(2)):
# the series' coefficients 1/(2k+1), highest first; the first term left out is below 1e-18.
_ATANH = tuple(1.0 / (2 * k + 1) for k in range(11, -1, -1))
# Taylor coefficients of sin x / x and cos x in x**2, highest first, for |x| <= pi/4: the first
# terms left out (x**19/19!, x**20/20!) are below 1e-19.
_SIN = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(8, -1, -1))
_COS = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(9, -1, -1))
_HALF_PI = 0.5 * math.pi


def log_uniform(w):
    """``ln((w + 1/2) / 2**32)`` for a 32-bit word ``w``: Box-Muller's ``ln u``, to about an ulp.

    The range reduction is exact (halvings by comparison), then ``ln m = 2 atanh(s)`` by its
    series; the power of two leaves no rounding at ``u`` near 1, where ``ln u`` is tiny.
    """
    x = w + 0.5
    e = -32.0
    for scale, inverse, b in _LOG_STEPS:
        step = (x >= scale) * 1.0
        x = x * (1.0 + step * (inverse - 1.0))
        e = e + step * b
    # x in [1/2, 2) -> [sqrt(1/2), sqrt(2))
    low = (x < _SQRT_HALF) * 1.0
    high = (x >= 2.0 * _SQRT_HALF) * 1.0
    x = x * (1.0 + low - 0.5 * high)
    e = e - low + high
    s = (x - 1.0) / (x + 1.0)
    s2 = s * s
    series = 0.0
    for c in _ATANH:
        series = series * s2 + c
    return e * _LN2 + 2.0 * s * series


def cos_sin_turns(w):
    """``(cos 2 pi u, sin 2 pi u)`` for ``u = (w + 1/2) / 2**32`` and a 32-bit word ``w``.

    ``4 u`` is split exactly into quarter turns ``k`` and a rest ``r`` in ``[-1/2, 1/2)``; the
    Taylor series give the cosine and sine of ``r pi / 2``, and the quarter turns rotate them.
    """
    a = (w + 0.5) * (4.0 * INV_2_32)
    k1 = (a >= 0.5) * 1.0
    k2 = (a >= 1.5) * 1.0
    k3 = (a >= 2.5) * 1.0
    k4 = (a >= 3.5) * 1.0
    x = (a - (k1 + k2 + k3 + k4)) * _HALF_PI
    x2 = x * x
    sin_x = 0.0
    for c in _SIN:
        sin_x = sin_x * x2 + c
    sin_x = sin_x * x
    cos_x = 0.0
    for c in _COS:
        cos_x = cos_x * x2 + c
    # k quarter turns: odd k swaps cosine and sine, k in {1, 2} negates the cosine and k in
    # {2, 3} the sine. Each sum below has one exact zero term, so it is exact.
    odd = k1 - k2 + k3 - k4
    cos_sign = 1.0 - 2.0 * (k1 - k3)
    sin_sign = 1.0 - 2.0 * (k2 - k4)
    return (
        cos_sign * (cos_x * (1.0 - odd) + sin_x * odd),
        sin_sign * (sin_x * (1.0 - odd) + cos_x * odd),
    )


def box_muller(w_a, w_b):
    """Two independent standard normals (cos part, sin part) from two 32-bit words."""
    r = np.sqrt(-2.0 * log_uniform(w_a))
    c, s = cos_sin_turns(w_b)
    return r * c, r * s


# The month word of the credit-cycle factors: no horizon (at most 1,200 months) reaches it.
CREDIT_MONTH = 2**32 - 1


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

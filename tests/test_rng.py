"""Philox4x32-10 against the Random123 known-answer vectors, the (seed, path, month, slot) layout
of kernels/rng.py, and the statistics of its normals (fixed seeds, tolerances of 5 standard
errors)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from riskengine.kernels import rng

# Random123 kat_vectors, philox4x32 with 10 rounds: (counter c0..c3, key k0 k1) -> 4 words.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF,) * 2,
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_kat_scalar(counter, key, expected):
    words = rng.philox4x32(*(np.uint64(v) for v in (*counter, *key)))
    assert [int(w) for w in words] == list(expected)


def test_philox_kat_arrays():
    # All three vectors in one vectorized call, as normals() makes it.
    inputs = np.array([c + k for c, k, _ in KAT], dtype=np.uint64)
    columns = list(inputs.T)
    words = rng.philox4x32(*columns)
    assert np.stack(words, axis=1).tolist() == [list(e) for _, _, e in KAT]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_counter_and_key_layout(counter, key, expected):
    """seed = k0 + 2**32 k1, path = c0 + 2**32 c1, month = c2, slot div 4 = c3 (module docs)."""
    seed = key[0] + (key[1] << 32)
    path = counter[0] + (counter[1] << 32)
    k0, k1 = rng.split_seed(seed)
    w = [np.uint64(v) for v in expected]
    want = [*rng.box_muller(w[0], w[1]), *rng.box_muller(w[2], w[3])]
    got = [rng.normal(k0, k1, path, counter[2], 4 * counter[3] + j) for j in range(4)]
    assert got == want


def test_normals_array_path_matches_kat():
    w = [np.uint64(v) for v in KAT[0][2]]
    want = [*rng.box_muller(w[0], w[1]), *rng.box_muller(w[2], w[3])]
    assert rng.normals(0, [0], [0], 4)[0, 0].tolist() == want


def test_normals_equal_scalar_normal():
    seed = 2**40 + 12345
    paths = np.array([0, 1, 7, 2**32 - 1, 2**32, 2**33 + 7])
    months = np.array([0, 1, 2, 60, 1199])
    z = rng.normals(seed, paths, months, 11)
    k0, k1 = rng.split_seed(seed)
    for i, p in enumerate(paths):
        for j, m in enumerate(months):
            for s in range(11):
                assert z[i, j, s] == rng.normal(k0, k1, p, m, s), (p, m, s)


def test_blocks_are_independent():
    months = np.arange(0, 13)
    whole = rng.normals(7, np.arange(20), months, 9)
    part = rng.normals(7, np.arange(5, 10), months, 9)
    np.testing.assert_array_equal(part, whole[5:10])
    # A subset of months or a prefix of slots is the same numbers too.
    np.testing.assert_array_equal(rng.normals(7, np.arange(20), [3, 11], 5), whole[:, [3, 11], :5])


def test_extreme_words_give_finite_normals():
    for a in (0, 2**32 - 1):
        for b in (0, 2**32 - 1):
            z = rng.box_muller(np.uint64(a), np.uint64(b))
            assert np.all(np.isfinite(z)) and np.all(np.abs(z) < 7.0)


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    """200 000 normals: 25 000 paths x 2 months x 4 slots (two Box-Muller pairs)."""
    return rng.normals(1, np.arange(25_000), [1, 2], 4).reshape(-1, 4)


def test_mean_and_variance(sample):
    z = sample.ravel()
    n = z.size
    assert abs(z.mean()) < 5.0 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 5.0 * np.sqrt(2.0 / n)
    # E z^4 = 3, and var z^4 = E z^8 - 9 = 105 - 9 = 96.
    assert abs((z**4).mean() - 3.0) < 5.0 * np.sqrt(96.0 / n)


def test_kolmogorov_smirnov(sample):
    assert stats.kstest(sample.ravel(), "norm").pvalue > 1e-3


def test_cos_sin_pair_independent(sample):
    """Box-Muller's pair: radius^2 ~ chi2(2), angle uniform, the two normals uncorrelated
    (also in their squares, which a dependent pair with zero correlation would show)."""
    for a, b in ((0, 1), (2, 3), (1, 2)):
        x, y = sample[:, a], sample[:, b]
        n = x.size
        assert abs(np.corrcoef(x, y)[0, 1]) < 5.0 / np.sqrt(n)
        assert abs(np.corrcoef(x**2, y**2)[0, 1]) < 5.0 / np.sqrt(n)
    r2 = sample[:, 0] ** 2 + sample[:, 1] ** 2
    assert stats.kstest(r2, stats.chi2(2).cdf).pvalue > 1e-3
    angle = np.arctan2(sample[:, 1], sample[:, 0])
    assert stats.kstest(angle, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3


def test_neighbouring_paths_and_months_uncorrelated():
    z = rng.normals(99, np.arange(40_001), [1, 2], 1)[:, :, 0]
    n = z.shape[0] - 1
    assert abs(np.corrcoef(z[:-1, 0], z[1:, 0])[0, 1]) < 5.0 / np.sqrt(n)
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 5.0 / np.sqrt(n)


def test_seeds_above_2_32():
    assert rng.split_seed(2**40 + 5) == (5, 256)
    assert rng.split_seed(2**64 - 1) == (2**32 - 1, 2**32 - 1)
    base = rng.normals(1, np.arange(4), [1], 4)
    # Seeds that agree in the low 32 bits must still differ: the high word is the second key.
    assert not np.any(rng.normals(1 + 2**32, np.arange(4), [1], 4) == base)
    assert not np.any(rng.normals(2**64 - 1, np.arange(4), [1], 4) == base)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "7", None])
def test_seed_validation(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\)"):
        rng.normals(seed, [0], [1], 1)


def test_numpy_integer_seed_accepted():
    np.testing.assert_array_equal(
        rng.normals(np.uint64(3), [0, 1], [1], 3), rng.normals(3, [0, 1], [1], 3)
    )


def test_box_muller_log_and_angle_agree_with_libm():
    """rng's own ln u and cos/sin(2 pi u) (docs/model.md): within 2 ulp and 1e-15 of numpy's
    libm, over the edge words and 2 * 10**5 random ones."""
    edges = np.concatenate([np.arange(2000), 2**32 - 1 - np.arange(2000), 2 ** np.arange(32)])
    random = np.random.default_rng(20261129).integers(0, 2**32, 200_000)
    w = np.concatenate([edges, random]).astype(np.uint64)
    u = (w + 0.5) / 2**32
    log = np.log(u)
    assert np.max(np.abs(rng.log_uniform(w) - log) / np.spacing(np.abs(log))) <= 2.0
    c, s = rng.cos_sin_turns(w)
    np.testing.assert_allclose(c, np.cos(2 * np.pi * u), rtol=0, atol=1e-15)
    np.testing.assert_allclose(s, np.sin(2 * np.pi * u), rtol=0, atol=1e-15)
    # the scalar path (kernels) is the array path (reference)
    assert rng.log_uniform(w[123]) == rng.log_uniform(w)[123]

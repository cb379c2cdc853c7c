"""Shared checks of kernel output against the numpy reference (used by the CPU and CUDA tests).

Tolerance: every cube variable must equal the reference to ``rtol = 1e-5``. ``atol`` is
``1e-12`` of the variable's largest value: where the kernels give an exact 0 (no credit loss at
``q = 0``), the reference's ``ndtr(ndtri(pd0)) - pd0`` leaves rounding of about 1e-13.
"""

from __future__ import annotations

import numpy as np

RTOL = 1e-5
ATOL_OF_MAX = 1e-12


def assert_block_equal(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Assert that two blocks in the cube's layout agree to the kernels' tolerance."""
    assert set(actual) == set(expected)
    for name, want in expected.items():
        got = actual[name]
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape, name
        atol = ATOL_OF_MAX * float(np.max(np.abs(want), initial=0.0))
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=name)

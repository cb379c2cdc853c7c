"""Shared checks of kernel output against the numpy reference (used by the CPU and CUDA tests).

Tolerance: :data:`riskengine.backends.KERNEL_RTOL` relative, or
:data:`~riskengine.backends.KERNEL_ATOL_OF_MAX` of the variable's largest value in the block
(its comment says why).
"""

from __future__ import annotations

import numpy as np

from riskengine.backends import KERNEL_ATOL_OF_MAX as ATOL_OF_MAX
from riskengine.backends import KERNEL_RTOL as RTOL


def assert_block_equal(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Assert that two blocks in the cube's layout agree to the kernels' tolerance."""
    assert set(actual) == set(expected)
    for name, want in expected.items():
        got = actual[name]
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape, name
        atol = ATOL_OF_MAX * float(np.max(np.abs(want), initial=0.0))
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=name)


def assert_block_identical(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Assert that two blocks in the cube's layout are equal bit for bit (NaN equal to NaN)."""
    assert set(actual) == set(expected)
    for name, want in expected.items():
        got = actual[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.tobytes() == want.tobytes(), name

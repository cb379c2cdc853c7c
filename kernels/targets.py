"""One source, two targets: compile plain functions for ``numba.njit`` and CUDA device code.

The model's functions (:mod:`riskengine.kernels.rng`, :mod:`riskengine.kernels.step`) are plain
Python and call each other by bare name. A compiled function can only call compiled functions, so
:func:`compile_functions` compiles them in dependency order and gives each a copy of its module's
globals in which the names of the functions compiled before it refer to their compiled versions.
The plain functions themselves stay untouched (numpy code such as ``rng.normals`` keeps using them).

All jit options of the package live here (numbagg and sgkit keep theirs in one module too), and
so does the on-disk kernel cache: :func:`cached` points numba's cache at
:func:`kernel_cache_dir`, a per-user folder, never at a ``__pycache__`` inside the installed
package (files there outlive ``pip uninstall`` and would turn a reinstalled ``riskengine`` into an
empty namespace package).
Of fastmath only ``contract`` is on (fused multiply-add, as CUDA does by default): it halves the
latency of the polynomial and update chains and is decided at compile time, so a path's bits still
do not depend on blocks or threads. No reassociation: sums keep their written order.

This module imports math, os, numpy and numba (numba.cuda only when the CUDA target is asked for).
"""

from __future__ import annotations

import math
import os
import types
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

import numba
import numpy as np

__all__ = ["CPU_OPTIONS", "cached", "compile_functions", "kernel_cache_dir", "rebind"]

_MATH_FOR_CUDA = ("sqrt", "log", "exp", "cos", "sin")

CPU_OPTIONS: dict = {"nogil": True, "error_model": "numpy", "fastmath": {"contract"}}

# Every parallel function of the package (the CPU kernel, the credit stage) runs inside dask's
# thread pool, which needs a thread-safe threading layer (OpenMP or TBB), chosen here, before the
# first parallel launch of the process, unless the user chose one.
if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "threadsafe"


def _numpy_for_cuda() -> types.ModuleType:
    """numpy's namespace with math's scalar functions in place of the ufuncs of the same name.

    numba-cuda compiles ``math.sqrt(x)`` but not ``np.sqrt(x)`` on scalars (its ufunc table
    lacks them), while the model's source uses ``np.*`` so that numpy can run it on arrays.
    """
    shim = types.ModuleType("numpy_for_cuda")
    shim.__dict__.update(vars(np))
    for name in _MATH_FOR_CUDA:
        setattr(shim, name, getattr(math, name))
    return shim


def rebind(fn: Callable, compiled: dict[str, Callable], target: str = "cpu") -> Callable:
    """A copy of ``fn`` whose globals name the already compiled functions (for ``target``)."""
    scope = dict(fn.__globals__)
    if target == "cuda" and scope.get("np") is np:
        scope["np"] = _numpy_for_cuda()
    scope.update(compiled)
    clone = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = fn.__qualname__
    clone.__module__ = fn.__module__
    clone.__doc__ = fn.__doc__
    return clone


def compile_functions(
    functions: Sequence[Callable],
    target: str,
    compiled: dict[str, Callable] | None = None,
    out_of_line: Collection[str] = (),
    replace: Mapping[str, Callable] | None = None,
) -> dict[str, Callable]:
    """Compile ``functions`` (callees before callers) for ``target`` (``"cpu"`` or ``"cuda"``).

    Parameters
    ----------
    functions
        Plain Python functions; each may call the ones before it (and those in ``compiled``).
    target
        ``"cpu"``: ``numba.njit`` functions, inlined into their callers (and callable from
        Python). ``"cuda"``: ``numba.cuda.jit(device=True)`` functions.
    compiled
        Functions compiled earlier for the same target, by name.
    out_of_line
        Names of CPU functions called rarely (a severity draw at an onset): kept as calls, so
        that their bodies do not crowd the loops that call them.
    replace
        This target's own versions of some of ``functions``, by name (the CPU kernel's BLAS
        products): compiled in their place, and called by the others under the same name.

    Returns
    -------
    dict
        ``compiled`` extended with the new functions, by name.

    Examples
    --------
    >>> def twice(x):
    ...     return 2 * x
    >>> def quad(x):
    ...     return twice(twice(x))
    >>> compile_functions([twice, quad], "cpu")["quad"](3)
    12
    """
    done = dict(compiled or {})
    if target == "cpu":
        # Inlined into their callers (numba IR inlining): the kernel passes each path's rows as
        # array views, and an out-of-line call costs an atomic reference count per view.
        inline = numba.njit(inline="always", **CPU_OPTIONS)
        call = numba.njit(**CPU_OPTIONS)
        jits = {fn.__name__: call if fn.__name__ in out_of_line else inline for fn in functions}
    elif target == "cuda":
        from numba import cuda

        jits = {fn.__name__: cuda.jit(device=True) for fn in functions}
    else:
        raise ValueError(f"target must be 'cpu' or 'cuda', got {target!r}")
    own = dict(replace or {})
    unknown = set(own) - set(jits)
    if unknown:
        raise ValueError(f"replace names functions that are not compiled: {sorted(unknown)}")
    for fn in functions:
        done[fn.__name__] = jits[fn.__name__](rebind(own.get(fn.__name__, fn), done, target))
    return done


def kernel_cache_dir() -> Path:
    """The folder of riskengine's compiled kernels: ``$NUMBA_CACHE_DIR`` when set (numba's own
    setting), else ``$XDG_CACHE_HOME/riskengine/kernels``, else ``~/.cache/riskengine/kernels``.

    Each kernel's files sit in a subfolder named after the folder of its source (as numba names
    them), so two installations of riskengine never share files.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "riskengine" / "kernels"


def _cache_class():
    """numba's function cache with one locator: :func:`kernel_cache_dir`."""
    from numba.core import caching

    # numba's locator for NUMBA_CACHE_DIR (renamed without its underscore in numba 0.61)
    base = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator

    class Locator(base):
        def __init__(self, py_func, py_file):
            super().__init__(py_func, py_file)
            subpath = self.get_suitable_cache_subpath(py_file)
            self._cache_path = str(kernel_cache_dir() / subpath)

        @classmethod
        def from_function(cls, py_func, py_file):
            # Skip the base's "is NUMBA_CACHE_DIR set" test: the source file must exist and the
            # folder be writable (the mixin's checks), nothing else.
            return super(base, cls).from_function(py_func, py_file)

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = (Locator,)

    class Cache(caching.FunctionCache):
        _impl_class = Impl

    return Cache


def cached(dispatcher):
    """``dispatcher`` (a ``numba.njit`` function compiled without ``cache=True``) with its
    compiled code cached on disk in :func:`kernel_cache_dir`.

    Where that folder cannot be written, the kernel is compiled in every process instead (with a
    warning saying so and where to point ``NUMBA_CACHE_DIR``).
    """
    try:
        dispatcher._cache = _cache_class()(dispatcher.py_func)
    except RuntimeError:  # numba found no writable place for the cache
        warnings.warn(
            f"riskengine cannot write its kernel cache to {kernel_cache_dir()}; kernels are "
            "compiled in every process (set NUMBA_CACHE_DIR to a writable folder)",
            RuntimeWarning,
            stacklevel=2,
        )
    return dispatcher

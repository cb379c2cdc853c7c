"""How riskengine sits on a machine: importable from a checkout whatever the install, kernel
caches outside the package, one family of errors for bad input."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import riskengine as rk
from riskengine import errors
from riskengine.kernels import cpu, targets

ROOT = Path(__file__).resolve().parents[1]


def test_a_checkout_imports_its_kernels_without_an_editable_install():
    """As `python -m pytest` after a regular `pip install .`: the checkout's riskengine/ comes
    first on sys.path and no editable finder maps kernels/ into it."""
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import riskengine, riskengine.kernels.step, riskengine.data\n"
        "from importlib import resources\n"
        "print(riskengine.__file__)\n"
        "print(riskengine.kernels.step.__file__)\n"
        "print(sorted(riskengine.builtin_scenarios())[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert out == [
        str(ROOT / "riskengine" / "__init__.py"),
        str(ROOT / "kernels" / "step.py"),
        "chip_war",
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"NUMBA_CACHE_DIR": "/n", "XDG_CACHE_HOME": "/x"}, "/n"),
        ({"XDG_CACHE_HOME": "/x"}, "/x/riskengine/kernels"),
        ({"HOME": "/h"}, "/h/.cache/riskengine/kernels"),
    ],
)
def test_kernel_cache_folder_follows_the_environment(monkeypatch, env, expected):
    for name in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert targets.kernel_cache_dir() == Path(expected)


def test_the_cpu_kernel_is_cached_in_the_user_folder_never_in_the_package(truce_collapse):
    rk.simulate(truce_collapse, 3, 1, resolution="horizon")  # loads or compiles the kernel
    cache = Path(cpu._compiled_kernel()._cache.cache_path)
    assert cache.parent == targets.kernel_cache_dir()
    assert any(f.suffix == ".nbi" for f in cache.iterdir())  # numba's index of the kernel
    package = Path(inspect.getfile(cpu)).parent
    assert not [f for f in package.rglob("*") if f.suffix in (".nbi", ".nbc")]


def test_every_bad_input_error_is_an_input_error():
    classes = [getattr(errors, name) for name in errors.__all__]
    assert errors.InputError in classes
    for cls in classes:
        assert issubclass(cls, rk.InputError), cls
        assert issubclass(cls, ValueError), cls
    with pytest.raises(rk.InputError, match="no such scenario file"):
        rk.load_scenario("no_such_scenario")
    with pytest.raises(rk.InputError, match="backend 'gpu' is unknown"):
        rk.simulate("truce_collapse", 3, 1, backend="gpu")
    with pytest.raises(rk.InputError, match="no such run store"):
        rk.open_run("/no/such/run.zarr")

"""Every example in the package's docstrings runs and shows what it says (doctest).

Modules are found by walking the imported package (``riskengine`` and ``riskengine.kernels``,
whichever copy is imported: a checkout or an installed one), so that the examples are checked
under the names users import them by. numpy's print options are pinned for each run, so that an
example's printed floats cannot depend on what ran before it.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import riskengine
import riskengine.kernels

# numba's CUDA target: importing it outside the cuda extra only warns that it is deprecated.
SKIP = {"riskengine.kernels.cuda"}


def _module_names() -> list[str]:
    names = ["riskengine", "riskengine.kernels"]
    for package in (riskengine, riskengine.kernels):
        prefix = f"{package.__name__}."
        names += [info.name for info in pkgutil.walk_packages(package.__path__, prefix)]
    return sorted(set(names) - SKIP)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder().find(module, name) if t.examples]


MODULES = [name for name in _module_names() if _examples(name)]


def test_docstring_examples_are_found():
    """The walk reaches the package's main modules (a walk that found nothing would pass)."""
    for name in ("riskengine.engine", "riskengine.risk", "riskengine.kernels.targets"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    with np.printoptions(
        precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False, legacy=False
    ):
        for test in _examples(name):
            runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    assert result.attempted > 0

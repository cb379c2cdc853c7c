"""``riskengine.kernels`` and ``riskengine.data`` when riskengine is imported from a checkout.

pyproject.toml installs the checkout's ``kernels/`` as ``riskengine.kernels`` and ``configs/`` as
``riskengine.data``; installed copies (regular or editable) have both. But Python puts the
current folder first on ``sys.path`` for ``python -m pytest`` and ``python -c``, so run from the
checkout's root, ``riskengine`` is this folder, which holds neither: with a regular install,
``import riskengine`` then failed with "No module named 'riskengine.kernels'". In that case only
(this folder sits in a checkout, beside ``pyproject.toml``, and has no ``kernels`` of its own),
the two subpackages are loaded from the checkout's folders, as the editable install maps them.

This module imports the standard library only.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__all__ = ["map_checkout_folders"]

# pyproject.toml's package-dir: subpackage -> folder of the checkout
PACKAGE_DIRS = {"kernels": "kernels", "data": "configs"}


def map_checkout_folders() -> None:
    """Load ``riskengine.kernels`` and ``riskengine.data`` from the checkout, where needed."""
    package = Path(__file__).parent
    root = package.parent
    if not (root / "pyproject.toml").is_file():
        return  # an installed copy: its subpackages sit inside it
    parent = sys.modules["riskengine"]
    for name, folder in PACKAGE_DIRS.items():
        full = f"riskengine.{name}"
        init = root / folder / "__init__.py"
        if full in sys.modules or (package / name).exists() or not init.is_file():
            continue
        spec = importlib.util.spec_from_file_location(
            full, init, submodule_search_locations=[str(init.parent)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        setattr(parent, name, module)


map_checkout_folders()

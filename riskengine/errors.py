"""The errors riskengine raises for bad input, as one family.

Every error a user can cause (a scenario or economy file, an argument, a store, a dataset that is
no cube, a backend this machine cannot run) is an :class:`InputError`: ``str(err)`` is one line
naming the field, argument or file and what would fix it. API users catch ``InputError``; the
command line prints its message and exits with code 2. Anything else is a bug or a failure of the
machine and exits with code 1.

This module imports nothing.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CubeError",
    "EconomyError",
    "InputError",
    "PortfolioError",
    "RunError",
    "ScenarioError",
    "StoreError",
]


class InputError(ValueError):
    """Bad input: ``str(err)`` is one line naming the field, argument or file and the fix."""


class ScenarioError(InputError):
    """A scenario that cannot be run (the field as a YAML path, or the file)."""


class EconomyError(InputError):
    """An input-output table that cannot be used (the file and the fix)."""


class PortfolioError(InputError):
    """A credit portfolio or capital table that cannot be used (the file, row and column)."""


class RunError(InputError):
    """Bad arguments to a run (the argument and the fix)."""


class StoreError(InputError):
    """A store that cannot be used as asked (the store and the fix)."""


class CubeError(InputError):
    """A dataset that is not a riskengine cube (the variable, dim or attr that is wrong)."""


class BackendError(InputError):
    """A backend that cannot run here (unknown name, no GPU); the message says what to use."""

"""riskengine's version, from the installed distribution's metadata.

This module imports importlib.metadata only, so that any module may import it (the store writes
the version into every cube) without importing the package's public API.
"""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("riskengine")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

"""stemwatch analysis: text extraction, claim detection, storage, exports and the CLI."""

from pathlib import Path as _Path

from . import speedups as _speedups

__version__ = "0.1.0"

# Compiled detector modules are used only while they match their source (speedups.py).
_speedups.install(__name__, _Path(__file__).parent)

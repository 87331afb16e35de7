"""The detector's compiled modules: which are in use, and the pure-Python fallback.

``setup.py`` compiles the detector's hot modules (page_index, resolver, rules,
...) with Cython when it can; the ``.py`` files stay the source of truth and
what runs when nothing was compiled. A compiled module is used only while it
was built from the ``.py`` beside it: the build records each source's SHA-256
in ``_compiled.json``, and a module whose source has changed since (an edit, a
checkout) is imported from the source, with a warning, until ``make speedups``
rebuilds it. ``STEMWATCH_PURE_PYTHON=1`` imports every module from source.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

RECORD = "_compiled.json"  # {module name: SHA-256 of the .py it was compiled from}
PURE_ENV = "STEMWATCH_PURE_PYTHON"


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compiled_files(package_dir: Path) -> dict[str, Path]:
    """{module name: its extension file} for the extension modules that have a ``.py`` twin."""
    found = {}
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for path in package_dir.glob("*" + suffix):
            name = path.name[:-len(suffix)]
            if (package_dir / f"{name}.py").exists():
                found.setdefault(name, path)
    return found


def read_record(package_dir: Path) -> dict[str, str]:
    try:
        record = json.loads((package_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def sources_to_use(package_dir: Path, pure: bool) -> tuple[dict[str, Path], list[str]]:
    """({module: its .py} for the compiled modules that must be imported from source,
    [the stale ones]): every one when ``pure``, else those whose source differs from
    what they were built from."""
    compiled = compiled_files(package_dir)
    if not compiled:
        return {}, []
    record = {} if pure else read_record(package_dir)
    use, stale = {}, []
    for name in sorted(compiled):
        py = package_dir / f"{name}.py"
        if pure or record.get(name) != source_hash(py):
            use[name] = py
            if not pure:
                stale.append(name)
    return use, stale


class SourceFirst(importlib.abc.MetaPathFinder):
    """Imports the listed modules of a package from their ``.py``, not the extension beside it."""

    def __init__(self, package: str, sources: dict[str, Path]):
        self.sources = {f"{package}.{name}": path for name, path in sources.items()}

    def find_spec(self, fullname, path=None, target=None):
        source = self.sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, source, loader=importlib.machinery.SourceFileLoader(fullname, str(source)))


def install(package: str, package_dir: Path) -> list[str]:
    """Put the pure-Python fallback in place for ``package``; returns the stale modules."""
    pure = os.environ.get(PURE_ENV, "").strip().lower() not in ("", "0", "false", "no")
    sources, stale = sources_to_use(package_dir, pure)
    if stale:
        warnings.warn(f"{package}: {', '.join(stale)} changed since compiled; using the Python source "
                      "(run `make speedups` to rebuild)", RuntimeWarning, stacklevel=2)
    if sources:
        sys.meta_path.insert(0, SourceFirst(package, sources))
    return stale


def in_use(modules) -> dict[str, bool]:
    """{module name: imported from a compiled extension} for imported modules."""
    return {m.__name__: not m.__file__.endswith(".py") for m in modules}

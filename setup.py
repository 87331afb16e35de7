"""Compiles the detector's hot modules with Cython (everything else is in pyproject.toml).

The modules are plain Python and stay the source of truth: Cython compiles them
as they are (about a tenth fewer instructions a page, measured with
benchmarks/detect.py), a ``.pxd`` beside a module only declares types. A
failed or skipped build (no compiler, ``STEMWATCH_PURE_PYTHON=1``) leaves the
pure-Python package, which gives the same claims (tests/test_speedups.py).
Each built module's source hash goes to ``analysis/_compiled.json`` so that a
module edited after the build is imported from its source (analysis/speedups.py).
"""

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = ["page_index", "resolver", "rules", "stance", "sentences", "pagekind", "matcher"]
HERE = Path(__file__).resolve().parent


RECORD = "_compiled.json"  # read by analysis/speedups.py


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class BuildExt(build_ext):
    """build_ext that records, for each module built, the hash of the source it came from."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:  # one compiler per core: the C files are large
            self.parallel = os.cpu_count() or 1

    def build_extension(self, ext):
        super().build_extension(ext)  # raises on failure: nothing is recorded for it
        name = ext.name.rpartition(".")[2]
        record_path = Path(self.get_ext_fullpath(ext.name)).parent / RECORD
        record = _read(record_path)
        record[name] = hashlib.sha256((HERE / "analysis" / f"{name}.py").read_bytes()).hexdigest()
        record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    def run(self):
        super().run()  # builds in build_lib, then copies the modules into the source tree if --inplace
        if self.inplace:  # the copies came with the build's record (an old module, its old hash)
            built = _read(Path(self.build_lib) / "analysis" / RECORD)
            record = {name: built[name] for name in COMPILED if name in built}
            (HERE / "analysis" / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n",
                                                    encoding="utf-8")


def ext_modules():
    if os.environ.get("STEMWATCH_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("stemwatch: Cython not available, the detector stays pure Python")
        return []
    exts = cythonize([f"analysis/{name}.py" for name in COMPILED], quiet=True,
                     # annotations are documentation here, not C types to enforce
                     compiler_directives={"language_level": 3, "annotation_typing": False})
    for ext in exts:
        ext.optional = True  # no compiler: the pure-Python package still installs
    return exts


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExt})

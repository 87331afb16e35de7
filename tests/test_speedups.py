"""The compiled detector modules (setup.py) against the pure-Python source, and the fallback."""

import ast
import importlib
import importlib.machinery
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from analysis import speedups

ROOT = Path(__file__).resolve().parent.parent
# CI builds the compiled modules and sets this: then they must be the ones in use.
REQUIRED = os.environ.get("STEMWATCH_REQUIRE_COMPILED") == "1"

# Every page of the bundled demo sites plus invented pages with lists, headings,
# negations, FAQs and Spanish: the detector's branches, run both ways.
DUMP = r"""
import json, sys
from pathlib import Path
import analysis.page_index, analysis.resolver, analysis.rules, analysis.stance
import analysis.sentences, analysis.pagekind, analysis.matcher
from analysis.detect import Detector
from analysis.extract import extract_html

root = Path(sys.argv[1])
pages = []
for path in sorted((root / "data" / "demo" / "sites").rglob("*.html")):
    e = extract_html(path.read_bytes(), "https://demo.example.org/" + path.name)
    pages.append({"text": e.text, "title": e.title, "url": "https://demo.example.org/" + path.name,
                  "lang": e.lang, "cues": e.cues})
invented = [
    "Conditions we treat:\nAutism\nMultiple sclerosis\nCOPD\n\nBook your free consultation today!",
    "Our stem cell therapy cures Parkinson's disease. We do not claim to cure autism.",
    "Does stem cell therapy cure ALS? There is no evidence that it does.",
    "Beware of clinics that promise stem cell injections regrow cartilage in your knee.",
    "A trial at a university hospital is testing whether stem cells can repair heart tissue.",
    "Each amniotic injection contains millions of live stem cells. 94% of our patients improved!",
    "Our exosome lab is FDA registered and our protocol is IRB approved. Zero risk of rejection.",
    "Nuestra terapia con células madre cura el autismo. Resultados garantizados.",
    "Las inyecciones de células madre regeneran el cartílago de la rodilla sin cirugía.",
    "Cerebral palsy need not be the end. We have seen great improvements in children treated "
    "with stem cell therapy.",
]
pages += [{"text": t, "url": f"https://clinic{i}.example.org/treatments", "title": "", "lang": ""}
          for i, t in enumerate(invented)]
claims = [[a.page_kind, a.lang, [c.to_dict() for c in a.claims]]
          for a in Detector().analyze_many(pages)]
mods = [analysis.page_index, analysis.resolver, analysis.rules, analysis.stance, analysis.sentences,
        analysis.pagekind, analysis.matcher]
print(json.dumps({"compiled": {m.__name__: not m.__file__.endswith(".py") for m in mods}, "claims": claims}))
"""


def run_dump(pure: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != speedups.PURE_ENV}
    if pure:
        env[speedups.PURE_ENV] = "1"
    out = subprocess.run([sys.executable, "-c", DUMP, str(ROOT)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def setup_compiled() -> list[str]:
    """setup.py's COMPILED list, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no COMPILED list")


def test_compiled_and_pure_python_modules_give_the_same_claims():
    pure, default = run_dump(pure=True), run_dump(pure=False)
    assert not any(pure["compiled"].values()), pure["compiled"]
    n_claims = sum(len(page[2]) for page in pure["claims"])
    assert n_claims > 40  # the pages do exercise the detector
    assert default["claims"] == pure["claims"]
    if REQUIRED:  # else a machine without a compiler runs pure Python, still compared above
        assert default["compiled"] == {f"analysis.{name}": True for name in setup_compiled()}


def test_every_compiled_module_named_in_setup_exists():
    for name in setup_compiled():
        assert (ROOT / "analysis" / f"{name}.py").exists(), name


@pytest.fixture
def fake_package(tmp_path):
    """A package whose module has a source and a broken 'compiled' file beside it: importing
    the broken file fails, so a successful import proves the source was used."""
    pkg = tmp_path / "swfakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("VALUE = 'from source'\n")
    (pkg / ("mod" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"not a shared object")
    sys.path.insert(0, str(tmp_path))
    before = list(sys.meta_path)
    yield pkg
    sys.meta_path[:] = before
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("swfakepkg")]:
        del sys.modules[name]


def test_the_broken_extension_is_what_python_would_import(fake_package):
    with pytest.raises(ImportError):
        importlib.import_module("swfakepkg.mod")


def test_a_module_changed_since_compiled_is_imported_from_source(fake_package, monkeypatch):
    monkeypatch.delenv(speedups.PURE_ENV, raising=False)
    (fake_package / speedups.RECORD).write_text(json.dumps({"mod": "0" * 64}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stale = speedups.install("swfakepkg", fake_package)
    assert stale == ["mod"]
    assert "mod changed since compiled" in str(caught[0].message)
    assert importlib.import_module("swfakepkg.mod").VALUE == "from source"


def test_a_module_without_a_record_counts_as_changed(fake_package):
    sources, stale = speedups.sources_to_use(fake_package, pure=False)
    assert stale == ["mod"] and sources == {"mod": fake_package / "mod.py"}


def test_a_module_matching_its_record_stays_compiled(fake_package):
    digest = speedups.source_hash(fake_package / "mod.py")
    (fake_package / speedups.RECORD).write_text(json.dumps({"mod": digest}))
    assert speedups.sources_to_use(fake_package, pure=False) == ({}, [])
    # ...but the pure-Python switch takes the source anyway, without calling it stale
    assert speedups.sources_to_use(fake_package, pure=True) == ({"mod": fake_package / "mod.py"}, [])


def test_pure_python_switch_imports_from_source(fake_package, monkeypatch):
    digest = speedups.source_hash(fake_package / "mod.py")
    (fake_package / speedups.RECORD).write_text(json.dumps({"mod": digest}))
    monkeypatch.setenv(speedups.PURE_ENV, "1")
    assert speedups.install("swfakepkg", fake_package) == []
    assert importlib.import_module("swfakepkg.mod").VALUE == "from source"


def test_a_corrupt_record_counts_as_changed(fake_package):
    (fake_package / speedups.RECORD).write_text("{not json")
    assert speedups.sources_to_use(fake_package, pure=False)[1] == ["mod"]

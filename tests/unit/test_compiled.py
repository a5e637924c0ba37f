"""The compiled (mypyc) modules: loaded when fresh, never when stale or refused.

``make test-compiled`` and CI set ``CITYLEDGER_REQUIRE_COMPILED=1``: then the suite
fails unless every module of ``mypyc_build.LOADED`` (the mypyc modules and the C
twins) really was loaded from its extension module (a build that fell back to pure
Python must not pass as compiled).
``make test-pure`` sets ``CITYLEDGER_PURE=1``: then none may be.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mypyc_build
from ledger import compiled

ROOT = Path(__file__).resolve().parents[2]
NAMES = [compiled.module_name(p) for p in mypyc_build.LOADED]


def test_the_modules_load_as_the_environment_asks() -> None:
    loaded = {name: compiled.is_compiled(importlib.import_module(name)) for name in NAMES}
    if os.environ.get("CITYLEDGER_REQUIRE_COMPILED") == "1":
        assert compiled.describe() == "compiled"
        assert [n for n, c in loaded.items() if not c] == [], "not compiled"
    elif os.environ.get(compiled.PURE_ENV) == "1":
        assert compiled.describe().startswith("pure")
        assert [n for n, c in loaded.items() if c] == [], "compiled despite CITYLEDGER_PURE=1"
    else:  # the mypyc modules all or none (they call each other natively); a C twin
        # that did not build (no OpenSSL headers) runs pure beside them, as the build says
        built = {compiled.module_name(p) for p in compiled.built_sources() if p.endswith(".py")}
        assert loaded == {name: name in built for name in NAMES}
        assert not built or {compiled.module_name(p) for p in mypyc_build.MODULES} <= built


def _state_module_in_child(pure: bool) -> tuple[str, str]:
    """(whether ``ledger.state`` loaded compiled, describe()) in a fresh process; stderr."""
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    code = (
        "import ledger.state, ledger.compiled as c; "
        "print(c.is_compiled(ledger.state), c.describe())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)} | ({compiled.PURE_ENV: "1"} if pure else {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip(), out.stderr


def test_cityledger_pure_keeps_every_module_pure() -> None:
    out, err = _state_module_in_child(pure=True)
    assert out.startswith("False pure (") and err == ""


@pytest.mark.skipif(compiled.check(str(ROOT))[1] is not None, reason="not compiled (make compile)")
def test_a_fresh_build_is_loaded() -> None:
    assert _state_module_in_child(pure=False) == ("True compiled", "")


SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # .cpython-311-x86_64-linux-gnu.so


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "hot.py").write_text("X = 1\n")
    (tmp_path / "ledger" / f"hot{SUFFIX}").write_bytes(b"not an ELF")
    return tmp_path


def test_an_edited_source_makes_the_build_stale(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    compiled.write_manifest(str(root), ["ledger/hot.py"])
    assert compiled.check(str(root)) == (["ledger/hot.py"], None)
    (root / "ledger" / "hot.py").write_text("X = 2\n")
    sources, why = compiled.check(str(root))
    assert sources == ["ledger/hot.py"] and why == "ledger/hot.py changed since it was compiled"


def test_an_edited_c_twin_makes_the_build_stale(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "ledger" / "hot.c").write_text("/* X = 1 */\n")
    compiled.write_manifest(str(root), ["ledger/hot.py", "ledger/hot.c"])
    assert compiled.check(str(root))[1] is None
    (root / "ledger" / "hot.c").write_text("/* X = 2 */\n")
    assert compiled.check(str(root))[1] == "ledger/hot.c changed since it was compiled"


def test_an_extension_module_without_a_manifest_is_not_trusted(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    sources, why = compiled.check(str(root))
    assert sources == ["ledger/hot.py"]
    assert why is not None and "has no manifest" in why
    assert compiled.remove_built(str(root)) == [str(root / "ledger" / f"hot{SUFFIX}")]
    assert compiled.check(str(root)) == ([], "not compiled")


def test_the_pure_finder_imports_the_source_over_the_extension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    (root / "hotpkg").mkdir(parents=True)
    (root / "hotpkg" / "__init__.py").write_text("")
    (root / "hotpkg" / "hot.py").write_text("WHERE = 'source'\n")
    (root / "hotpkg" / f"hot{SUFFIX}").write_bytes(b"not an ELF")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    for name in ("hotpkg", "hotpkg.hot"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError):  # what Python itself would load: the (broken) extension
        importlib.import_module("hotpkg.hot")
    sys.meta_path.insert(0, compiled._PureFinder(str(root), {"hotpkg.hot"}))
    assert importlib.import_module("hotpkg.hot").WHERE == "source"


def test_the_build_is_up_to_date_only_for_the_same_fresh_modules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if compiled.check(str(ROOT))[1] is not None:
        pytest.skip("not compiled (make compile)")
    monkeypatch.chdir(ROOT)
    assert mypyc_build.up_to_date(mypyc_build.MODULES)
    assert not mypyc_build.up_to_date((*mypyc_build.MODULES, "ledger/votes.py"))


_TWIN_SOURCE = """
#include <Python.h>
static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "ledger.hot", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_hot(void) { return PyModule_Create(&m); }
"""


@pytest.mark.parametrize("broken", [False, True])
def test_a_c_twin_that_does_not_build_is_left_out_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: bool
) -> None:
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "hot.py").write_text("X = 1\n")
    (tmp_path / "ledger" / "hot.c").write_text("not C;\n" if broken else _TWIN_SOURCE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mypyc_build, "C_TWINS", {"ledger/hot.py": "ledger/hot.c"})
    monkeypatch.setattr(mypyc_build, "C_LIBRARIES", {"ledger/hot.c": []})
    monkeypatch.setattr(mypyc_build, "_mypyc_extensions", lambda modules: [])  # no mypyc step
    missed = mypyc_build.build((), quiet=True)
    sources, why = compiled.check(str(tmp_path))
    if broken:
        assert len(missed) == 1 and missed[0].startswith("ledger/hot.c (")
        assert sources == [] and not list((tmp_path / "ledger").glob("hot.*.so"))
    else:
        assert missed == [] and why is None
        assert sorted(sources) == ["ledger/hot.c", "ledger/hot.py"]
        assert (tmp_path / "ledger" / f"hot{SUFFIX}").exists()
    assert mypyc_build.up_to_date(())  # a twin that failed is not rebuilt at every make

"""Which modules run compiled (mypyc) and which as pure Python, decided once per process.

``make compile`` (``mypyc_build.py``) puts an extension module next to each hot module
(``ledger/state.cpython-311-x86_64-linux-gnu.so`` beside ``ledger/state.py``) and writes
:data:`MANIFEST`: the SHA-256 of every source it compiled. Python's import system
prefers an extension module to its source, so a ``.py`` edited after the build would
silently run as its old compiled self. :func:`activate` — called by the ``ledger``,
``contracts`` and ``node`` packages before any of their modules loads — prevents that:
when a compiled source no longer matches its hash, or an extension module is found that
no manifest vouches for, or ``CITYLEDGER_PURE=1`` is set, every compiled module is
imported from its ``.py`` instead (all of them: compiled modules call each other
natively, so mixing old and new would run the old code), with one line on stderr when
the reason is staleness.

Cost: the sources are hashed once per process, about 300 kB (well under 5 ms).
"""

from __future__ import annotations

import glob
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join("ledger", "_compiled.json")  # relative to the tree's root
GROUP = "ledger._native"  # mypyc's shared library: ledger/_native__mypyc.*.so
PACKAGES = ("ledger", "contracts", "node")  # where compiled modules may live
PURE_ENV = "CITYLEDGER_PURE"

_state: dict[str, str] = {}  # "mode": compiled | pure, "why": the reason when pure


def module_name(path: str) -> str:
    """``ledger/state.py`` → ``ledger.state``."""
    return path[: -len(".py")].replace("/", ".").replace(os.sep, ".")


def source_hash(root: str, path: str) -> str:
    with open(os.path.join(root, path), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_manifest(root: str, paths: Sequence[str]) -> None:
    """Record the hash of every compiled source (the build's last step)."""
    doc = {"group": GROUP, "sources": {p: source_hash(root, p) for p in paths}}
    with open(os.path.join(root, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


def built_files(root: str) -> list[str]:
    """Every extension module in the packages that may hold compiled ones."""
    found: list[str] = []
    for package in PACKAGES:
        found += glob.glob(os.path.join(root, package, "**", "*.so"), recursive=True)
    return sorted(found)


def remove_built(root: str) -> list[str]:
    """Delete the extension modules and the manifest (``make clean-compiled``)."""
    gone = built_files(root)
    manifest = os.path.join(root, MANIFEST)
    if os.path.exists(manifest):
        gone.append(manifest)
    for path in gone:
        os.remove(path)
    return gone


def check(root: str) -> tuple[list[str], str | None]:
    """The compiled sources of ``root`` and, if they must not be used, why not."""
    try:
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
            sources: dict[str, str] = json.load(f)["sources"]
    except FileNotFoundError:
        built = built_files(root)
        if not built:
            return [], "not compiled"
        names = [os.path.relpath(p, root) for p in built]
        return _sources_of(names), f"{names[0]} has no manifest ({MANIFEST})"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _sources_of(built_files(root)), f"{MANIFEST} unreadable: {exc}"
    for path, digest in sorted(sources.items()):
        try:
            if source_hash(root, path) != digest:
                return list(sources), f"{path} changed since it was compiled"
        except OSError:
            return list(sources), f"{path} is missing"
    return list(sources), None


def _sources_of(built: Sequence[str]) -> list[str]:
    """The ``.py`` beside each extension module (``a/b.cpython-311-….so`` → ``a/b.py``)."""
    return [p.split(".", 1)[0] + ".py" for p in built if "__mypyc" not in p]


class _PureFinder(importlib.abc.MetaPathFinder):
    """Imports the named modules from their ``.py``, ahead of the extension modules."""

    def __init__(self, root: str, names: set[str]) -> None:
        self.root = root
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        source = os.path.join(self.root, *fullname.split(".")) + ".py"
        return importlib.util.spec_from_file_location(fullname, source)


def activate(root: str = ROOT) -> None:
    """Decide, once, whether this process runs the compiled modules (see the module doc)."""
    if _state:
        return
    sources, why = check(root)
    if os.environ.get(PURE_ENV) == "1":
        why = why or f"{PURE_ENV}=1"  # asked for: no warning
    elif why is not None and sources:
        print(
            f"cityledger: compiled modules not used, {why}; running pure Python "
            "(`make compile` rebuilds them, `make clean-compiled` removes them)",
            file=sys.stderr,
        )
    _state.update(mode="pure" if why else "compiled", why=why or "")
    if why and sources:  # a C twin's source (``.c``) names no module of its own
        names = {module_name(p) for p in sources if p.endswith(".py")}
        sys.meta_path.insert(0, _PureFinder(root, names))


def describe() -> str:
    """``compiled`` or ``pure (why)``: for reports and benchmark results."""
    activate()
    return "compiled" if _state["mode"] == "compiled" else f"pure ({_state['why']})"


def mode() -> str:
    """``compiled`` or ``pure``, without the why (a node's ``/v1/status``: public)."""
    activate()
    return _state["mode"]


def built_sources(root: str = ROOT) -> list[str]:
    """The sources this process runs compiled: every source the build compiled (a C twin
    that did not build is not among them), none when it runs pure."""
    activate(root)
    return check(root)[0] if _state["mode"] == "compiled" else []


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from an extension module."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)

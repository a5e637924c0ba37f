"""Compile the hot modules with mypyc, in place, falling back to pure Python.

``python mypyc_build.py`` (``make compile``) builds one extension module next to each
module of :data:`MODULES` (``ledger/state.cpython-311-….so`` beside ``ledger/state.py``)
and mypyc's shared library (``ledger/_native__mypyc.….so``: inside a package, so that the
editable install finds it), then each hand-written C twin of :data:`C_TWINS`
(``ledger/digest.c`` beside ``ledger/digest.py``), then writes
:data:`ledger.compiled.MANIFEST`: the SHA-256 of every compiled source. Python imports
an extension module in preference to its ``.py``, so the manifest is what lets
``ledger.compiled`` notice a source edited after the build and import the pure modules
instead (docs/performance.md, "Compiled modules").

Why a script and not ``pip install``: the modules are built from the sources already in
place (the venv is installed editable), with the mypy the dev dependencies bring, and the
setuptools in the venv need not read pyproject.toml (the build does not go through it).

A build that fails (no C compiler, no Python headers, a mypyc error) removes what it
left behind and says so in one line; the package then runs as pure Python. The exit
status is 0 either way unless ``--strict`` is given (CI's check that the build works).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from setuptools import Extension

# What pays (cProfile of `cityledger bench stages`): canonical encoding, the state tree and
# its pages, the Merkle log, transaction and block decoding, the execution overlay and the
# contract execution. What is left out, and why: docs/performance.md, "Compiled modules".
MODULES: tuple[str, ...] = (
    "ledger/encoding.py",
    "ledger/state.py",
    "ledger/state_pages.py",
    "ledger/state_update.py",
    "ledger/merkle.py",
    "ledger/log.py",
    "ledger/tx.py",
    "ledger/block.py",
    "ledger/storage/overlay.py",
    "contracts/engine.py",
    "contracts/state_keys.py",
    "contracts/search_buckets.py",
    "contracts/record_cache.py",
    "contracts/shipments.py",
    "contracts/shipment_search.py",
    "contracts/energy.py",
    "contracts/market.py",
    "contracts/permits.py",
    "contracts/identity.py",
    "contracts/codes.py",
    "contracts/index_keys.py",
)

# Pure modules with a hand-written C twin, built after the mypyc modules and under the
# same manifest (an edited ``.c`` makes the build stale like an edited ``.py``). A twin
# that does not build (e.g. no OpenSSL headers) is left out: its pure module runs, the
# mypyc modules are kept, and `make clean-compiled compile` tries it again.
C_TWINS: dict[str, str] = {
    "ledger/digest.py": "ledger/digest.c",
    "ledger/page_codec.py": "ledger/page_codec.c",
}
C_LIBRARIES: dict[str, list[str]] = {  # OpenSSL's libcrypto: SHA-256
    "ledger/digest.c": ["crypto"],
    "ledger/page_codec.c": ["crypto"],
}
LOADED: tuple[str, ...] = MODULES + tuple(C_TWINS)
"""Every module that loads from an extension module when the whole build is current."""


def build(modules: tuple[str, ...], *, quiet: bool) -> list[str]:
    """Compile ``modules`` with mypyc and then each C twin, in place, and write the
    manifest. Raises :class:`BuildFailed` if the mypyc build fails; returns the C twins
    that did not build, each with the first error its compiler reported."""
    from ledger import compiled

    _build_quietly(partial(_mypyc_extensions, modules), quiet)
    built: list[str] = []
    missed: list[str] = []
    for module, source in C_TWINS.items():
        try:
            _build_quietly(partial(_twin_extensions, module, source), quiet)
        except BuildFailed as exc:
            missed.append(f"{source} ({exc})")
        else:
            built += [module, source]
    compiled.write_manifest(".", modules + tuple(built))
    return missed


class BuildFailed(Exception):
    """The build stopped; the message is the first error the compiler reported."""


def _build_quietly(extensions: Callable[[], list[Extension]], quiet: bool) -> None:
    sink = io.StringIO()
    out = contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext()
    try:
        with out:
            _build_ext(extensions())
    except (Exception, SystemExit) as exc:  # setuptools reports compiler errors as SystemExit
        errors = [line for line in sink.getvalue().splitlines() if "error" in line]
        raise BuildFailed(errors[0] if errors else str(exc) or type(exc).__name__) from exc


def _mypyc_extensions(modules: tuple[str, ...]) -> list[Extension]:
    from mypyc.build import mypycify  # the dev dependency mypy brings mypyc

    from ledger import compiled

    return mypycify(
        list(modules), opt_level="3", group_name=compiled.GROUP, target_dir="build/mypyc"
    )


def _twin_extensions(module: str, source: str) -> list[Extension]:
    from setuptools import Extension

    from ledger import compiled

    return [Extension(compiled.module_name(module), [source], libraries=C_LIBRARIES[source])]


def _build_ext(extensions: list[Extension]) -> None:
    from setuptools import Distribution

    # A bare Distribution: it does not parse pyproject.toml (older setuptools in a venv
    # cannot read its licence field, and nothing there concerns this build).
    dist = Distribution({"name": "cityledger-compiled", "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.inplace = True
    dist.run_command("build_ext")


def up_to_date(modules: tuple[str, ...]) -> bool:
    """Whether the compiled modules are exactly ``modules`` (and the C twins that built),
    built from their current sources."""
    from ledger import compiled

    sources, why = compiled.check(".")
    twin_sources = set(C_TWINS) | set(C_TWINS.values())
    if why is not None or sorted(s for s in sources if s not in twin_sources) != sorted(modules):
        return False
    built = {os.path.relpath(p) for p in compiled.built_files(".")}
    loaded = [s for s in sources if s.endswith(".py")]
    return all(any(b.startswith(m[: -len(".py")] + ".") for b in built) for m in loaded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 if the build fails")
    parser.add_argument("--verbose", action="store_true", help="show the compiler's output")
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args(argv)
    from ledger import compiled  # after __main__ set CITYLEDGER_PURE: no stale-module warning

    if args.clean:
        gone = compiled.remove_built(".")
        print(f"compile: removed {len(gone)} files; pure Python from now on")
        return 0
    if up_to_date(MODULES):
        print("compile: compiled modules up to date")
        return 0
    compiled.remove_built(".")  # nothing stale survives a failed build
    began = time.monotonic()
    try:
        missed = build(MODULES, quiet=not args.verbose)
    except (BuildFailed, ImportError) as exc:  # ImportError: no mypyc or setuptools here
        compiled.remove_built(".")
        print(f"compile: mypyc build failed ({exc}); using pure Python", file=sys.stderr)
        return 1 if args.strict else 0
    for twin in missed:
        print(f"compile: C twin {twin} not built; its pure module runs", file=sys.stderr)
    took = time.monotonic() - began
    twins = len(C_TWINS) - len(missed)
    print(
        f"compile: {len(MODULES)} modules compiled with mypyc and {twins} C twin(s) in {took:.0f} s"
    )
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    os.environ["CITYLEDGER_PURE"] = "1"  # the build needs no compiled module (none may be fresh)
    sys.exit(main())

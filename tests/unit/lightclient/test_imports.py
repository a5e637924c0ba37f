"""The light client is pure: any client can check answers without the node or a UI.

``lightclient`` may import the standard library, :mod:`ledger` and :mod:`contracts`,
never the node, its HTTP stack or the command line's (issue 16). Its imports are
read with :mod:`ast`, and a fresh interpreter that imports every module shows that
none of the forbidden packages comes in indirectly either.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "lightclient"
ALLOWED_FIRST_PARTY = {"ledger", "contracts", "lightclient"}
FIRST_PARTY = {"ledger", "contracts", "lightclient", "node", "cli", "devnet", "benchmarks", "tests"}
FORBIDDEN = {"node", "aiohttp", "cli", "click", "rich", "benchmarks", "devnet", "tests"}
MODULES = sorted(PACKAGE.rglob("*.py"))


def top_level_imports(path: Path) -> set[str]:
    """The first name of every absolute module ``path`` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_package_is_there() -> None:
    assert len(MODULES) >= 10, "lightclient's modules were not found"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_ledger_contracts_and_the_standard_library(path: Path) -> None:
    imported = top_level_imports(path)
    assert not imported & FORBIDDEN, f"{path.name} imports {sorted(imported & FORBIDDEN)}"
    first_party = imported & FIRST_PARTY
    assert first_party <= ALLOWED_FIRST_PARTY, f"{path.name} imports {sorted(first_party)}"
    third_party = {
        name
        for name in imported - FIRST_PARTY
        if name not in sys.stdlib_module_names and name != "__future__"
    }
    assert not third_party, f"{path.name} imports {sorted(third_party)}"


def test_importing_the_package_brings_in_no_forbidden_module() -> None:
    modules = [
        "lightclient." + str(p.relative_to(PACKAGE).with_suffix("")).replace("/", ".")
        for p in MODULES
        if p.name != "__init__.py"
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", f"importing lightclient loads {done.stdout.strip()}"


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").rglob("*.py")), ids=lambda p: p.name)
def test_benchmarks_do_not_import_the_command_line(path: Path) -> None:
    """The benchmarks check answers with the light client; ``cli`` imports them, not back."""
    assert "cli" not in top_level_imports(path), f"benchmarks/{path.name} imports cli"

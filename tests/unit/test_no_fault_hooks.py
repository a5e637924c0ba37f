"""Test-only behaviour does not ship: no crash point, no byzantine
mode, no environment switch for either, and no import of test code in the product.

The fault suite injects its faults by patching the node's methods from
tests/e2e/launcher.py; the product packages must not even know the names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("node", "cli", "devnet", "ledger", "contracts", "lightclient", "benchmarks")
FAULT_ENV = re.compile(r"CITYLEDGER_(CRASH|BYZANTINE)\w*")


def _sources() -> list[Path]:
    files = [p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50, "the product packages were not found"
    return files


def test_node_faults_module_is_gone() -> None:
    assert not (ROOT / "node" / "faults.py").exists()


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_product_code_reads_no_fault_switch_and_imports_no_test_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = FAULT_ENV.search(text)
    assert found is None, f"{path}: mentions {found.group(0) if found else ''}"
    for node in ast.walk(ast.parse(text, str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif (  # importlib.import_module("tests...") / __import__("tests...")
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                modules = [node.args[0].value]
        for module in modules:
            assert module != "tests" and not module.startswith("tests."), (
                f"{path}:{node.lineno} imports test code ({module})"
            )
            assert module != "node.faults", f"{path}:{node.lineno} imports node.faults"


def test_no_environment_read_names_a_fault() -> None:
    """Any ``os.environ[...]`` / ``os.environ.get(...)`` / ``os.getenv(...)`` in the
    product reads a name that is not a fault switch (a computed name would need a look)."""
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Subscript) and _is_environ(node.value):
                name = node.slice
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                if isinstance(func, ast.Attribute) and (
                    (func.attr in ("get", "pop", "setdefault") and _is_environ(func.value))
                    or (func.attr == "getenv" and _is_os(func.value))
                ):
                    name = node.args[0]
            if name is None:
                continue
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                assert not FAULT_ENV.match(name.value), f"{path}:{node.lineno}: {name.value}"
            elif isinstance(name, ast.Name) and name.id.isupper():
                continue  # a module constant: its value is a literal, checked by the search
            else:
                pytest.fail(f"{path}:{node.lineno}: an environment read with a computed name")


def _is_os(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "os"


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ" and _is_os(node.value)) or (
        isinstance(node, ast.Name) and node.id == "environ"
    )

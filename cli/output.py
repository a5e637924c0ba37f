"""Shared terminal output: one console, one way to fail."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

from ledger.encoding import Value, canonical
from ledger.schema import Described

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=_hex) + "\n")


def print_json_line(value: Any) -> None:
    """One JSON document on one line (a stream of them: JSON Lines), flushed."""
    sys.stdout.write(json.dumps(value, default=_hex) + "\n")
    sys.stdout.flush()


def record_json(record: Described) -> Value:
    """A typed record as ``--json`` shows it: its stored map, keys in canonical order."""
    return canonical(record.to_obj())


def _hex(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot render {type(value).__name__}")

"""Telling the user about the temporary directories a killed command left, as they are
removed (:mod:`ledger.storage.temp_dirs`)."""

from __future__ import annotations

from rich.markup import escape

from cli.output import err_console
from ledger.storage.temp_dirs import remove_leftovers

MIB = 1024 * 1024


def remove_leftovers_and_say() -> None:
    """Remove what audits, backups and benchmarks killed earlier (SIGKILL, a crash) left
    in the temporary directory, with one line on standard error when there was any."""
    removed = remove_leftovers()
    if not removed:
        return
    freed = sum(left.freed_bytes for left in removed) / MIB
    paths = ", ".join(escape(left.path) for left in removed)
    noun = "directory" if len(removed) == 1 else "directories"
    err_console.print(
        f"[yellow]note:[/] removed {len(removed)} temporary {noun} left by a command "
        f"that was killed ({freed:,.1f} MB freed): {paths}",
        highlight=False,
    )

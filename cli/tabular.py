"""A list's columns, defined once: the terminal table and ``--format csv`` come from them.

``--format table|csv|json`` (``--json`` stays as the short form of ``--format
json``). CSV is RFC 4180 (the :mod:`csv` module: CRLF line ends, fields quoted
where needed), a header row of stable snake_case column names, one row per
record, nothing else on stdout: what was verified goes to stderr, so a pipe gets
only the rows. Cells are the same values the table shows (what this key may
read; the node redacts the rest before anything reaches the CLI).
"""

from __future__ import annotations

import csv
import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import click
from rich.console import Console
from rich.table import Table

from cli.output import console, err_console

R = TypeVar("R")
FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Column(Generic[R]):
    name: str  # the CSV header (stable, snake_case)
    heading: str  # the table's heading
    cell: Callable[[R], str]
    right: bool = False
    only: str = ""  # "table" or "csv": a column for one of them only
    min_width: int | None = None  # e.g. a hash kept on one line, to copy it whole


def _of(columns: Sequence[Column[R]], skip: str) -> list[Column[R]]:
    return [c for c in columns if c.only != skip]


@dataclass(frozen=True)
class Listing(Generic[R]):
    columns: Sequence[Column[R]]
    title: str | None = None

    def table(self, records: Iterable[R]) -> Table:
        table = Table(title=self.title, title_justify="left")
        columns = _of(self.columns, "csv")
        for c in columns:
            table.add_column(
                c.heading,
                justify="right" if c.right else "left",
                overflow="fold",
                min_width=c.min_width,
            )
        for r in records:
            table.add_row(*(c.cell(r) for c in columns))
        return table

    def emit(self, records: Sequence[R], fmt: str) -> Console:
        """The records as CSV rows, or as the table (when there are any); returns where
        the lines about them go: stderr under CSV (stdout holds only the rows)."""
        if fmt == "csv":
            self.write_csv(records)
            return err_console
        if records:
            console.print(self.table(records))
        return console

    def write_csv(self, records: Iterable[R]) -> None:
        columns = _of(self.columns, "table")
        writer = csv.writer(sys.stdout, lineterminator="\r\n")
        writer.writerow([c.name for c in columns])
        writer.writerows([c.cell(r) for c in columns] for r in records)
        sys.stdout.flush()


def format_option(
    *extra: str, help_text: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--format table|csv|json`` (and the ``extra`` formats of this command) and
    ``--json``, passed to the command as ``fmt``."""

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, as_json: bool, out_format: str, **kw: Any) -> Any:
            return command(*args, fmt="json" if as_json else out_format, **kw)

        run = click.option(
            "--json", "as_json", is_flag=True, help="Machine-readable output (--format json)."
        )(run)
        return click.option(
            "--format",
            "out_format",
            type=click.Choice((*FORMATS, *extra)),
            default="table",
            show_default=True,
            help="table, csv (RFC 4180, header row; what was verified goes to stderr) or json"
            + (help_text or "."),
        )(run)

    return wrap

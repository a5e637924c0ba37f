"""Click options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def existing_file_option(
    flag: str, dest: str, *, required: bool, help_text: str, envvar: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``flag`` names a file that must exist (not a directory); its path goes to ``dest``."""
    return click.option(
        flag,
        dest,
        required=required,
        type=click.Path(exists=True, dir_okay=False),
        envvar=envvar,
        help=help_text,
    )


def json_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--json``: print the machine-readable form instead of the table (to ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def height_option(
    help_text: str = "At this block.",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--height``: the block (1 or more) a read is made at, to ``height``; None, the
    default, is the latest certified block (each command says which in ``help_text``)."""
    return click.option("--height", type=click.IntRange(min=1), default=None, help=help_text)

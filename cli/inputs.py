"""What the user types, checked and normalised before anything is asked or signed.

A container number is checked against ISO 6346 here (format, then check digit),
so that a typo gets one line naming what is wrong instead of "no shipment
matches" from a search or a refused transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli.output import fail
from contracts.codes import CONTAINER_PATTERN, iso6346_check_digit


def container_problem(text: str) -> str | None:
    """What is wrong with ``text`` (already upper case) as an ISO 6346 number, or None."""
    if not CONTAINER_PATTERN.match(text):
        return (
            f"{text}: not an ISO 6346 container number (owner code of 3 letters, category "
            "U, J or Z, 6 digits and the check digit, e.g. MSCU1234566)"
        )
    digit = iso6346_check_digit(text[:10])
    if digit != int(text[10]):
        return f"{text}: check digit should be {digit} (ISO 6346)"
    return None


def container_number(text: str) -> str:
    """``text`` as a container number: spaces and dashes dropped, upper case, checked."""
    number = text.strip().upper().replace(" ", "").replace("-", "")
    problem = container_problem(number)
    if problem is not None:
        fail(problem)
    return number


def _containers(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    """A click callback: one number, a tuple of them (``multiple``), or None."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(container_number(v) for v in value)
    return container_number(value)


CONTAINERS: Callable[[click.Context, click.Parameter, Any], Any] = _containers
"""``callback=CONTAINERS`` on every option that takes container numbers."""

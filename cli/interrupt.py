"""SIGTERM taken as Ctrl-C by the commands that start node processes (``devnet up``,
``bench``): it raises KeyboardInterrupt, so their ``finally`` blocks stop what they
started, and cli/main.py exits 130. While an event loop runs, benchmarks/run.py turns
both signals into a cancellation instead (an exception raised inside one of the loop's
callbacks would not reach the code that stops the nodes)."""

from __future__ import annotations

import signal


def raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def sigterm_interrupts() -> None:
    """From now on, SIGTERM raises KeyboardInterrupt as Ctrl-C does."""
    signal.signal(signal.SIGTERM, raise_interrupt)

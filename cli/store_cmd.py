"""``cityledger node migrate-store``: bring a stopped node's store to this version's format.

In place, and safe to interrupt at any point and run again (ledger/state_migrate.py:
new rows first, then the format row in one synced batch, then the old rows removed).
Why in place rather than a resync from peers: the migration reads only the node's own
disk, keeps every historic state root answering (a resync would too, but only after
fetching and re-executing the whole chain over the network, hours on a long chain), and
works for the last node of a network as well as for one of many.
"""

from __future__ import annotations

import os
import time

import click

from cli.output import console, err_console, fail
from ledger.state_migrate import MigrationProgress, migrate_store
from ledger.storage import MIB, open_leveldb
from ledger.storage.format import STORE_FORMAT
from node.config import Home

REPORT_EVERY_S = 2.0


class _Reporter:
    """One progress line on stderr every few seconds, and one when a step begins."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        self.step = ""

    def __call__(self, state: MigrationProgress) -> None:
        now = time.monotonic()
        if state.step == self.step and now - self.last < REPORT_EVERY_S:
            return
        self.step, self.last = state.step, now
        elapsed = now - self.started
        if state.step == "pages" and state.roots:
            share = state.roots_done / state.roots
            eta = f", about {elapsed / share - elapsed:.0f} s left" if share else ""
            err_console.print(
                f"state roots {state.roots_done:,}/{state.roots:,} ({share:.0%}): "
                f"{state.pages:,} pages and {state.leaves:,} leaves written{eta}",
                highlight=False,
                soft_wrap=True,
            )
        elif state.step == "refile" and state.states:
            share = state.states_done / state.states
            eta = f", about {elapsed / share - elapsed:.0f} s left" if share else ""
            err_console.print(
                f"states filed by height {state.states_done:,}/{state.states:,} ({share:.0%}){eta}",
                highlight=False,
                soft_wrap=True,
            )
        elif state.step == "compact" and state.reclaimable:
            err_console.print(
                f"giving back the space of the removed rows (about "
                f"{_size(state.reclaimable)}): compacting their tables, which takes a few "
                "seconds per GiB",
                highlight=False,
                soft_wrap=True,
            )
        elif state.step == "cleanup" and not state.already:
            err_console.print(
                f"format {STORE_FORMAT} in force; removing the old rows ({state.removed:,} so far)",
                highlight=False,
                soft_wrap=True,
            )


def _size(n: int) -> str:
    """Bytes as an operator reads them: 1.2 GiB, 807 MiB, 310 KiB."""
    if n >= 1024 * MIB:
        return f"{n / (1024 * MIB):.1f} GiB"
    return f"{n / MIB:,.0f} MiB" if n >= MIB else f"{max(1, round(n / 1024)):,} KiB"


@click.command("migrate-store")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
def migrate_store_cmd(home: str) -> None:
    """Migrate a stopped node's store to this version's format, in place.

    Safe to interrupt (Ctrl-C, a crash, a power cut) and run again: it carries on."""
    data = Home(home).data
    if not os.path.isdir(data):
        fail(f"{data} does not exist: is {home} a node home?")
    started = time.monotonic()
    store = open_leveldb(data)  # refuses a store a running node holds
    try:
        result = migrate_store(store, _Reporter())
    finally:
        store.close()
    if result.already:
        freed = (
            f"; gave back {_size(result.reclaimed)} the removed rows of an earlier "
            "migration still took"
            if result.reclaimed
            else ": nothing to do"
        )
        console.print(
            f"{data} is already in store format {STORE_FORMAT}{freed}",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(
        f"migrated {data} to store format {STORE_FORMAT} in {time.monotonic() - started:.1f} s: "
        + (
            f"{result.roots:,} format-1 state roots paged ({result.pages:,} pages, "
            f"{result.leaves:,} leaves), "
            if result.roots
            else ""
        )
        + f"{result.states:,} states filed by height, {result.removed:,} old rows removed"
        + (f" ({_size(result.reclaimed)} given back)" if result.reclaimed else "")
        + "; start the node as before",
        highlight=False,
        soft_wrap=True,
    )

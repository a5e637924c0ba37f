"""The options every verified read command takes, bundled: where to ask and what to trust,
and which page of a search.

``--node`` (with ``--pin``/``--cacert``), ``--genesis``, ``--key`` (on the commands
whose reads are signed) and ``--max-age`` reach the command as one :class:`Source`;
the command turns it into :class:`~cli.verified_reads.Reads` with :meth:`Source.reads`
once its own arguments are checked, so a usage error is said before any file is
opened or any node asked. ``--limit``, ``--after`` and ``--height`` of a paged search
reach it as one :class:`PageAsk`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from cli.client import NodeClient, genesis_option, node_option
from cli.keys_cmd import key_option, load_key
from cli.options import height_option
from cli.output import fail
from cli.verified_reads import Reads, max_age_option
from ledger.genesis import Genesis
from lightclient.search import Paging


@dataclass(frozen=True, slots=True)
class Source:
    """The node to ask, the genesis file its answers are checked against, the key that
    signs the reads (None: unsigned) and the age limit of an answer about now."""

    node: str
    genesis_path: str
    key_path: str | None
    max_age_s: float

    def reads(self) -> Reads:
        genesis = Genesis.load(self.genesis_path)
        key = load_key(self.key_path) if self.key_path else None
        client = NodeClient(self.node, key=key, chain_id=genesis.chain_id)
        return Reads(client, genesis, self.max_age_s)


def source_options(
    key_help: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--node``/``--pin``/``--cacert``, ``--genesis``, ``--key`` (when ``key_help`` says
    what the key signs) and ``--max-age``, passed to the command as ``source``."""

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(
            *args: Any,
            node: str,
            genesis_path: str,
            max_age_s: float,
            key_path: str | None = None,
            **kw: Any,
        ) -> Any:
            return command(*args, source=Source(node, genesis_path, key_path, max_age_s), **kw)

        with_options: Callable[..., Any] = max_age_option()(run)
        if key_help is not None:
            with_options = key_option(help_text=key_help)(with_options)
        return node_option()(genesis_option()(with_options))

    return wrap


def read_at_options(
    key_help: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a read of one record: ``--height`` (the latest certified block when
    not given: :func:`cli.options.height_option`) and :func:`source_options`."""

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        return height_option()(source_options(key_help)(command))

    return wrap


@dataclass(frozen=True, slots=True)
class PageAsk:
    """The page of a search the user asked for: ``--limit``, ``--after`` (a slot) and
    ``--height`` (None: the latest block)."""

    limit: int
    after: int | None
    height: int | None

    def paging(self) -> Paging:
        """The page asked for; a later page must name the first page's height, so that every
        page is read from one state (a bucket's members move between slots as they change)."""
        if self.after is not None and self.height is None:
            fail("--after needs --height (the first page's height): pages must come from one state")
        return Paging(self.after or 0, self.limit)

    def params(self) -> dict[str, int | None]:
        """The page as the node's search routes take it (query parameters)."""
        return {"limit": self.limit, "after": self.after, "height": self.height}


def paging_options() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--limit``, ``--after`` (a slot number) and ``--height`` of a paged search, passed
    to the command as ``page`` (a :class:`PageAsk`)."""

    at_height = height_option("At this block (a later page: the first page's height).")
    after_option = click.option(
        "--after",
        type=click.IntRange(min=0),
        default=None,
        help="Start at this slot (from the previous page's 'more:' line); needs --height.",
    )
    limit_option = click.option(
        "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Page size."
    )

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, limit: int, after: int | None, height: int | None, **kw: Any) -> Any:
            return command(*args, page=PageAsk(limit, after, height), **kw)

        with_options: Callable[..., Any] = limit_option(after_option(at_height(run)))
        return with_options

    return wrap

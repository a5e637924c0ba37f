"""The options every verified read command takes, bundled: where to ask and what to trust.

``--node`` (with ``--pin``/``--cacert``), ``--genesis``, ``--key`` (on the commands
whose reads are signed) and ``--max-age`` reach the command as one :class:`Source`;
the command turns it into :class:`~cli.verified_reads.Reads` with :meth:`Source.reads`
once its own arguments are checked, so a usage error is said before any file is
opened or any node asked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli.client import NodeClient, genesis_option, node_option
from cli.keys_cmd import key_option, load_key
from cli.verified_reads import Reads, max_age_option
from ledger.genesis import Genesis


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

"""Every read command's way to a verified answer: one node, one genesis, one age limit.

:class:`Reads` hands each answer to :func:`lightclient.answers.verify_answer` (the
one place that decides genesis match, freshness and whole histories) with the
genesis hash the node names and the freshness the user asked for, and turns each
refusal into one line and exit status 1:

* another chain: ``genesis mismatch: this chain's genesis is X, yours is Y``;
* a stale answer: which height, how old, which node, and what to do;
* anything else that does not check out: what did not.

``--max-age`` (default 60 s, env ``CITYLEDGER_MAX_AGE``) bounds the age of the
certified block of every answer about *now*, or, when that block is older (an idle
network commits only a heartbeat block a minute), the age its head statements prove
(``GET /v1/head``, lightclient/head.py); ``--height`` and ``--at`` ask for an older
one knowingly, and the output says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import click
from rich.text import Text

from cli.client import NodeClient, NodeError, system_ms
from cli.output import fail, print_json, record_json
from cli.render import fmt_time
from cli.tabular import Listing
from cli.validator_cache import fetch_history
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.answers import (
    Freshness,
    StaleAnswer,
    V,
    Verified,
    describe_age,
    verify_answer,
)
from lightclient.errors import GenesisMismatch, VerificationError
from lightclient.search import SearchView

MAX_AGE_ENV = "CITYLEDGER_MAX_AGE"
DEFAULT_MAX_AGE_S = 60.0
FINAL = "a committed transaction (final: the block that committed it never changes)"


def max_age_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--max-age",
        "max_age_s",
        type=click.FloatRange(min=0),
        default=DEFAULT_MAX_AGE_S,
        show_default=True,
        envvar=MAX_AGE_ENV,
        help="Refuse an answer whose certified block is older than this many seconds "
        f"(unless --height or --at asks for an older one). Env: {MAX_AGE_ENV}.",
    )


class Reads:
    """Answers from one node, each accepted only through :func:`verify_answer`."""

    def __init__(
        self,
        client: NodeClient,
        genesis: Genesis,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Callable[[], int] = system_ms,
    ) -> None:
        self.client = client
        self.genesis = genesis
        self.max_age_ms = int(max_age_s * 1000)
        self.clock = clock
        self._status = client.public_status()
        self.check_genesis()
        self._history()

    def _history(self) -> None:
        """The chain's certified validator-set changes, so that answers after a change
        verify with the genesis file alone (cli/validator_cache.py)."""
        try:
            fetch_history(self.client, self.genesis)
        except VerificationError as exc:
            self.refuse(exc)

    def check_genesis(self) -> None:
        """Before anything is asked: a node of another chain is named as such, both
        genesis hashes shown (signed reads would otherwise fail on the chain id)."""
        named = self.node_genesis()
        if named != self.genesis.hash:
            self.refuse(GenesisMismatch(self._how_chains_differ(), self.genesis.hash, named))

    def _how_chains_differ(self) -> str:
        """What the node says differs from the genesis file: chain id, validators, or neither."""
        chain_id, ours = self._status.get("chain_id"), self.genesis.chain_id
        if chain_id != ours:
            return f"the node serves chain {chain_id!r}, your genesis file is for {ours!r}"
        if self.client.get("/v1/validators").get("hash") != self.genesis.validators.hash:
            return "the node names a validator set other than your genesis file's"
        return "the node's chain has your chain id and validators, yet started from another genesis"

    def now_or_at(self, height: int | None) -> Freshness:
        """The latest answer (``--max-age``), or exactly block ``height`` as asked."""
        return self.current() if height is None else self.at_height(height)

    def current(self) -> Freshness:
        """An answer about now: no older than ``--max-age``."""
        return Freshness.current(self.clock(), self.max_age_ms)

    def at_height(self, height: int, asked: str = "") -> Freshness:
        """The answer at exactly ``height``, of any age: the user asked for it."""
        return Freshness.at_height(self.clock(), height, asked)

    def covering(self, at_ms: int) -> Freshness:
        """An answer about ``at_ms``: fresh, or from a block at or after that time."""
        return Freshness.covering(self.clock(), self.max_age_ms, at_ms)

    def any_age(self, asked: str) -> Freshness:
        return Freshness.any_age(self.clock(), asked)

    def node_genesis(self) -> bytes:
        """The genesis hash the node names for its chain (``/v1/status``, asked once)."""
        named = self._status.get("genesis_hash")
        if not isinstance(named, bytes):
            self.refuse(VerificationError("the node does not name its genesis hash"))
        return named

    def accept(self, read: Callable[[], V], freshness: Freshness) -> Verified[V]:
        """``read()``'s view, verified; a one-line refusal and exit 1 otherwise."""
        try:
            return verify_answer(
                read, self.genesis, self.node_genesis(), freshness, self.head_statements
            )
        except VerificationError as exc:
            self.refuse(exc)

    def head_statements(self, height: int) -> list[Value]:
        """The node's head statements for block ``height`` (``GET /v1/head``); none
        from a node that serves none (the answer is then judged by its block's time)."""
        try:
            answer = self.client.get("/v1/head", {"height": height})
        except NodeError:
            return []
        statements = answer.get("statements")
        return statements if isinstance(statements, list) else []

    def signer(self) -> bytes:
        """The public key that signs this client's reads (what the node may withhold from
        a search depends on what that key may read)."""
        if self.client.key is None:
            fail("give --key: this read is signed, and what it may see depends on the key")
        return self.client.key.public_key

    def refuse(self, exc: VerificationError) -> NoReturn:
        url = self.client.url
        if isinstance(exc, GenesisMismatch):
            fail(f"REFUSED: {exc} (asked {url})")
        if isinstance(exc, StaleAnswer):
            fail(
                f"REFUSED: the answer from {url} is stale: {exc}: the node is behind or the "
                "network has stopped; ask another node, or accept that block knowingly with "
                f"--height {exc.height} (or raise --max-age)"
            )
        fail(f"REFUSED: the answer from {url} does not check out: {exc}")


def freshness_text(verified: Verified[Any]) -> Text:
    """``✔ verified at height N (block time …, 3 s old) by …``, and why an old one is shown."""
    c = verified.certified
    head = verified.head
    age = describe_age(verified.age_ms)
    when = f"{age} old" if head is None else f"still the head {age} ago"
    text = Text.assemble(
        ("✔ ", "bold green"),
        (
            f"verified at height {c.height} (block time {fmt_time(verified.time_ms)}, "
            f"{when}) by validators {', '.join(c.signers)} "
            f"({c.power} of {c.total_power} voting power)",
            "green",
        ),
    )
    if head is not None:
        text.append(
            f"\n  an idle network: head statements by {', '.join(head.signers)} ({head.power} "
            f"of {head.total_power} voting power) prove block {c.height} was still the head "
            f"at {fmt_time(head.time_ms)}",
            "green",
        )
    if verified.asked:
        text.append(f"\n  an older block, shown because you asked for {verified.asked}", "yellow")
    return text


def freshness_json(verified: Verified[Any]) -> dict[str, Any]:
    """The fields every verified ``--json`` answer carries about its certified block."""
    c = verified.certified
    return {
        "verified": True,
        "height": c.height,
        "block_time_ms": verified.time_ms,
        "age_ms": verified.age_ms,
        "asked": verified.asked or None,
        "verified_by": list(c.signers),
        **head_json(verified),
    }


def head_json(verified: Verified[Any]) -> dict[str, Any]:
    """When head statements proved the age: the time they prove and who signed them."""
    head = verified.head
    if head is None:
        return {}
    return {"head_time_ms": head.time_ms, "head_signed_by": list(head.signers)}


# --- searches: one page of a proven bucket ----------------------------------------------------


def report_search(
    verified: Verified[Any],
    view: SearchView[Any],
    noun: str,
    listing: Listing[Any],
    fmt: str,
    **extra: Any,
) -> None:
    """A verified search page: ``json`` (the page's proof status, its records as
    ``<noun>s``, and ``extra``), else the table (or CSV rows), ``3 of 3 matching
    shipments, complete …``, the freshness line and the next page (to stderr
    under CSV, so that stdout holds the rows only)."""
    count = view.page.count
    if fmt == "json":
        page = {
            **freshness_json(verified),
            "complete": True,
            "bucket": {"family": view.page.bucket.family.name, "name": view.page.bucket.name},
            "total_in_bucket": count.total,
            "start": count.start,
            "slots": count.proven,
            "withheld": view.page.withheld,
            "next_after": count.next_after,
            f"{noun}s": [record_json(r) for r in view.found],
        }
        print_json({**page, **extra})
        return
    notes = listing.emit(view.found, fmt)
    notes.print(_search_line(view, noun))
    notes.print(freshness_text(verified))
    if count.next_after is not None:
        notes.print(f"more: --after {count.next_after} --height {verified.height}")


def _search_line(view: SearchView[Any], noun: str) -> str:
    count, found = view.page.count, len(view.found)
    where = f"{view.page.bucket.describe()} ({count.total} in all)"
    if count.total == 0:
        text = f"no {noun} matches: {view.page.bucket.describe()} is proven empty"
    elif count.start == 0 and count.next_after is None:
        text = f"{found} of {count.total} matching {noun}s, complete: every member of {where}"
    else:
        last = count.start + count.proven - 1
        text = f"{found} matching {noun}s in slots {count.start}-{last} of {where}, page complete"
    if view.page.withheld:
        text += f"; {view.page.withheld} more this key may not read (counted, not shown)"
    return text

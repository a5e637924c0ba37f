"""``lightclient.head``: an old block proven current by head statements, and every
statement a lying node could hand over to make a stale answer look fresh, refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.head import HeadStatement
from lightclient.answers import Freshness, StaleAnswer, verify_answer
from lightclient.errors import VerificationError
from lightclient.head import proven_head_time
from lightclient.headers import CertifiedHeader, check_certificate
from tests.unit.cli.kit import CHAIN_ID, NAMES, VALIDATORS, CliNode

MINUTE = 60_000
OLD = 10 * MINUTE  # the block is ten minutes old: an idle network's heartbeat is later


@dataclass(frozen=True)
class View:
    certified: CertifiedHeader

    def histories(self) -> tuple[()]:
        return ()


@pytest.fixture(scope="module")
def chain() -> CliNode:
    node = CliNode()
    node.commit([], node.chain.head().time_ms + 1000)
    return node


@pytest.fixture(scope="module")
def head(chain: CliNode) -> CertifiedHeader:
    h = chain.chain.head().height
    block, cert = chain.chain.block(h), chain.chain.certificate(h)
    assert block is not None and cert is not None
    return check_certificate(block.header, cert, chain.genesis)


def stmt(
    c: CertifiedHeader,
    key: PrivateKey,
    time_ms: int,
    *,
    chain_id: str = CHAIN_ID,
    block_hash: bytes | None = None,
    height: int | None = None,
) -> Value:
    h = c.height if height is None else height
    block = c.header.hash if block_hash is None else block_hash
    return HeadStatement.create(key, chain_id, h, block, time_ms).to_obj()


def fresh(c: CertifiedHeader, ages_ms: list[int]) -> tuple[int, list[Value]]:
    """``now`` (the block is OLD) and one statement per validator, each ``age`` old."""
    now = c.header.time_ms + OLD
    return now, [stmt(c, k, now - a) for k, a in zip(VALIDATORS, ages_ms, strict=False)]


def accept(chain: CliNode, c: CertifiedHeader, now: int, statements: list[Value]) -> Any:
    return verify_answer(
        lambda: View(c), chain.genesis, chain.genesis.hash, Freshness.current(now, MINUTE),
        lambda height: statements if height == c.height else [],
    )  # fmt: skip


def test_the_answer_time_is_when_more_than_two_thirds_had_all_signed(
    chain: CliNode, head: CertifiedHeader
) -> None:
    now, statements = fresh(head, [1000, 2000, 3000, 100_000])
    proven = proven_head_time(statements, head, chain.genesis)
    assert proven.time_ms == now - 3000 and proven.power == 3 and proven.total_power == 4
    assert proven.signers == tuple(NAMES[:3])
    verified = accept(chain, head, now, statements)
    assert verified.age_ms == 3000 and verified.head == proven
    assert verified.time_ms == head.header.time_ms  # the block's own time is kept


def test_without_statements_an_old_block_stays_stale(chain: CliNode, head: CertifiedHeader) -> None:
    now = head.header.time_ms + OLD
    with pytest.raises(StaleAnswer, match=r"10 min 0 s old, over the limit of 1 min 0 s$"):
        accept(chain, head, now, [])


def test_too_little_power_is_refused_and_a_validator_counts_once(
    chain: CliNode, head: CertifiedHeader
) -> None:
    now, statements = fresh(head, [1000, 2000])
    again = [stmt(head, VALIDATORS[0], now - t) for t in (10, 20, 30)]  # one key, 3 times
    with pytest.raises(VerificationError, match="2 of 4 voting power"):
        proven_head_time(statements + again, head, chain.genesis)


@pytest.mark.parametrize(
    "forge, reason",
    [
        (lambda c, now: stmt(c, PrivateKey.from_label("outsider"), now), "not a validator"),
        (lambda c, now: stmt(c, VALIDATORS[3], now, chain_id="other"), "not signed for chain"),
        (lambda c, now: stmt(c, VALIDATORS[3], now, block_hash=b"\x07" * 32), "not the answer's"),
        (lambda c, now: stmt(c, VALIDATORS[3], now, height=c.height + 1), "for height"),
        (lambda c, now: {"height": c.height}, "malformed"),
    ],
    ids=["non-validator", "another-chain", "wrong-hash", "wrong-height", "malformed"],
)
def test_a_bad_statement_is_refused_with_its_reason(
    chain: CliNode, head: CertifiedHeader, forge: Any, reason: str
) -> None:
    now, statements = fresh(head, [1000, 2000, 3000])
    with pytest.raises(VerificationError, match=reason):
        proven_head_time([*statements, forge(head, now)], head, chain.genesis)
    with pytest.raises(StaleAnswer, match=reason):
        accept(chain, head, now, [*statements, forge(head, now)])


def test_a_byzantine_third_cannot_make_a_stale_answer_look_fresh(
    chain: CliNode, head: CertifiedHeader
) -> None:
    """The three correct validators last signed this block as their head nine minutes
    ago (then they committed the next one); the byzantine one signs it as current, even
    an hour ahead, many times. The answer is still nine minutes old: refused."""
    now = head.header.time_ms + OLD
    correct = [stmt(head, k, now - 9 * MINUTE) for k in VALIDATORS[:3]]
    byzantine = [stmt(head, VALIDATORS[3], now + t) for t in (0, 1000, 3_600_000)]
    proven = proven_head_time(correct + byzantine, head, chain.genesis)
    assert proven.time_ms == now - 9 * MINUTE
    with pytest.raises(StaleAnswer, match="prove it the head only 9 min 0 s ago"):
        accept(chain, head, now, correct + byzantine)
    # one correct validator lagging behind (still on this block) and the byzantine one
    # are not enough: the third newest statement is a correct one's old time
    lagging = [stmt(head, VALIDATORS[0], now - 1000)]
    moved_on = [stmt(head, k, now - 9 * MINUTE) for k in VALIDATORS[1:3]]
    with pytest.raises(StaleAnswer, match="9 min 0 s ago"):
        accept(chain, head, now, lagging + moved_on + byzantine)
    # two correct validators that still hold it as their head a second ago: it is fresh
    two = [stmt(head, k, now - 1000) for k in VALIDATORS[:2]]
    assert accept(chain, head, now, two + moved_on[1:] + byzantine).age_ms == 1000


def test_too_many_statements_are_refused_before_any_is_checked(
    chain: CliNode, head: CertifiedHeader
) -> None:
    flood: list[Value] = [{}] * 1025
    with pytest.raises(VerificationError, match="1025 head statements"):
        proven_head_time(flood, head, chain.genesis)

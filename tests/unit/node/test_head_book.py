"""``node.head_book``: which head statements a node keeps (memory only, bounded), which
it ignores, and which blame the peer that sent them; and their wire frame."""

from __future__ import annotations

from ledger.crypto import PrivateKey
from ledger.head import HeadStatement
from node.head_book import HEIGHTS, MAX_AHEAD_MS, MIN_STEP_MS, HeadBook, Taken
from node.wire import HeadMsg, decode_message, encode_message
from tests.unit.cli.kit import CHAIN_ID, VALIDATORS, CliNode


def setup(blocks: int = 2) -> tuple[CliNode, HeadBook, int]:
    node = CliNode()
    for _ in range(blocks):
        node.commit([], node.chain.head().time_ms + 1000)
    now_ms = node.chain.head().time_ms + 5000
    return node, HeadBook(node.chain, lambda: now_ms / 1000), now_ms


def statement(node: CliNode, key: PrivateKey, time_ms: int, **changes: object) -> HeadStatement:
    head = node.chain.head()
    s = HeadStatement.create(key, CHAIN_ID, head.height, head.block_hash, time_ms)
    return s.replace(**changes) if changes else s


def test_a_validators_newer_statement_replaces_its_older_one() -> None:
    node, book, now = setup()
    first = statement(node, VALIDATORS[0], now - MIN_STEP_MS)
    second = statement(node, VALIDATORS[0], now)
    assert book.add(first) is Taken.NEW and book.add(first) is Taken.IGNORED
    assert book.add(second) is Taken.NEW and book.add(first) is Taken.IGNORED
    assert book.statements(node.chain.head().height) == [second]


def test_statements_closer_than_the_step_are_not_checked_again() -> None:
    """A byzantine validator signing ever later times costs one signature check per
    MIN_STEP_MS it claims: the ones in between are ignored before their signature."""
    node, book, now = setup()
    assert book.add(statement(node, VALIDATORS[0], now)) is Taken.NEW
    soon = statement(node, VALIDATORS[0], now + MIN_STEP_MS - 1, signature=bytes(64))
    assert book.add(soon) is Taken.IGNORED  # not even its (bad) signature was looked at


def test_forged_statements_blame_the_sender_and_are_not_kept() -> None:
    node, book, now = setup()
    outsider = statement(node, PrivateKey.from_label("outsider"), now)
    other_chain = HeadStatement.create(
        VALIDATORS[1], "other-chain", outsider.height, outsider.block_hash, now
    )
    bad_sig = statement(node, VALIDATORS[2], now, signature=bytes(64))
    for s in (outsider, other_chain, bad_sig):
        assert book.add(s) is Taken.FORGED
    assert book.statements(node.chain.head().height) == []


def test_other_blocks_heights_and_far_future_times_are_ignored() -> None:
    node, book, now = setup()
    head = node.chain.head().height
    assert book.add(statement(node, VALIDATORS[0], now, block_hash=b"\x01" * 32)) is Taken.IGNORED
    assert book.add(statement(node, VALIDATORS[0], now, height=head + 1)) is Taken.IGNORED
    ahead = now + MAX_AHEAD_MS + 1
    assert book.add(statement(node, VALIDATORS[0], ahead)) is Taken.IGNORED
    assert book.statements(head) == []


def test_only_the_last_heights_are_kept() -> None:
    node, book, _now = setup(blocks=1)
    for _ in range(HEIGHTS + 3):
        node.commit([], node.chain.head().time_ms + 1000)
        t = node.chain.head().time_ms
        for key in VALIDATORS:
            assert book.add(statement(node, key, t)) is Taken.NEW
    head = node.chain.head().height
    kept = [h for h in range(1, head + 1) if book.statements(h)]
    assert kept == list(range(head - HEIGHTS + 1, head + 1))
    assert sum(len(book.statements(h)) for h in kept) == HEIGHTS * len(VALIDATORS)


def test_the_head_frame_round_trips() -> None:
    node, _book, now = setup()
    msg = HeadMsg(statement(node, VALIDATORS[0], now))
    assert decode_message(encode_message(msg), 1 << 20) == msg

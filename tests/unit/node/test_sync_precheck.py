"""Catch-up's work removed or moved beside the loop (node/sync.py, node/wire.py): each
block's payload signatures are checked ahead while the blocks before it execute, and a
sync answer's blocks are decoded without canonicalising each transaction again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from ledger.block import Block
from ledger.encoding import decode, encode
from ledger.errors import DecodeError
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node.sync import PRECHECK_WAIT_S
from node.wire import SyncResponse, decode_message, encode_message
from tests.unit.node.synckit import Harness, one_peer_ahead, response, source_chain


def test_each_block_waits_for_its_own_precheck_only() -> None:
    src, p, h = one_peer_ahead(4)
    asked: list[int] = []
    executed: list[int] = []
    done: list[int] = []
    validate = h.kit.executor.validate_block

    async def precheck(txs: Sequence[Transaction]) -> None:
        asked.append(txs[0].nonce)
        await asyncio.sleep(0.001 * len(asked))
        done.append(txs[0].nonce)

    def validated(block: Block, now_ms: int | None, **kwargs: bool) -> object:
        executed.append(block.txs[0].nonce)
        assert block.txs[0].nonce in done  # its verdicts came first
        return validate(block, now_ms, **kwargs)

    h.syncer.precheck = precheck
    h.kit.executor.validate_block = validated  # type: ignore[method-assign]
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 4)))
    assert asked == [1, 2, 3, 4]  # all queued at once, in block order
    assert executed == [1, 2, 3, 4]
    assert h.kit.chain.head().block_hash == src.chain.head().block_hash


def test_a_lagging_precheck_holds_a_block_a_moment_only() -> None:
    src, p, h = one_peer_ahead(3)
    finished: list[int] = []

    async def stuck(txs: Sequence[Transaction]) -> None:
        await asyncio.sleep(30)
        finished.append(1)

    h.syncer.precheck = stuck
    began = time.monotonic()
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 3)))
    assert time.monotonic() - began < 3 * PRECHECK_WAIT_S + 5  # not 30 s per block
    assert h.kit.chain.head().height == 3 and not finished  # cancelled when the batch ended


def test_a_failed_precheck_leaves_the_check_to_execution() -> None:
    src, p, h = one_peer_ahead(2)

    async def broken(txs: Sequence[Transaction]) -> None:
        raise OSError("worker gone")

    h.syncer.precheck = broken
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 2)))
    assert h.kit.chain.head().height == 2


def test_a_sync_answer_decodes_to_the_stored_blocks() -> None:
    src = source_chain(3)
    frame = encode_message(response(src, 1, 3))
    msg = decode_message(frame, len(frame))
    assert isinstance(msg, SyncResponse)
    for block in msg.blocks:
        stored = src.chain.block(block.height)
        assert stored is not None and block == stored
        assert [tx.hash for tx in block.txs] == [tx.hash for tx in stored.txs]
        assert block.encode() == src.chain.block_bytes(block.height)


def test_a_sync_answer_with_a_malformed_transaction_is_refused() -> None:
    src = source_chain(1)
    doc = decode(encode_message(response(src, 1, 1)))
    assert isinstance(doc, dict)
    doc["b"]["blocks"][0]["txs"][0]["nonce"] = "one"  # type: ignore[index]
    frame = encode(doc)
    with pytest.raises(DecodeError):
        decode_message(frame, len(frame))


def test_a_certificate_checked_for_one_block_is_not_checked_again_as_the_next_ones_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, p, h = one_peer_ahead(4)
    checked: list[int] = []
    verify = CommitCertificate.verify

    def counted(cert: CommitCertificate, *args: object, **kwargs: object) -> None:
        checked.append(cert.height)
        verify(cert, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(CommitCertificate, "verify", counted)
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 4)))
    assert sorted(checked) == [1, 2, 3, 4]  # each once: as its block's own
    # a batch that starts on blocks this syncer did not apply checks its first block's
    # parent certificate, as a proposal's is checked
    h2 = Harness([p])
    for height in (1, 2):
        block, cert = src.chain.block(height), src.chain.certificate(height)
        assert block is not None and cert is not None
        h2.kit.executor.commit(h2.kit.executor.validate_block(block, None), cert)
    checked.clear()
    assert asyncio.run(h2.syncer.apply(p, response(src, 3, 4)))
    assert sorted(checked) == [2, 3, 4]

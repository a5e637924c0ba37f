"""Signatures of submitted and gossiped batches checked on another thread
(node/sigcache.py ``SignatureWorker``), and admission's answers unchanged by it."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from ledger.crypto import PrivateKey
from ledger.tx import Transaction
from node.peers import Peer
from node.sigcache import SignatureCache, SignatureWorker
from node.wire import TxBatch
from tests.unit.node.chainkit import ADMIN, CHAIN, VALIDATOR_KEYS, make_node


def member_tx(nonce: int) -> Transaction:
    key = PrivateKey.from_label(f"sig-worker-{nonce}")
    body = {"public_key": key.public_key, "name": f"m{nonce}", "roles": ["trader"]}
    return Transaction.create(ADMIN, CHAIN, "identity.register_member", nonce, body)


def forged(tx: Transaction) -> Transaction:
    return dataclasses.replace(tx, signature=bytes(64))


async def test_a_batch_is_checked_in_a_worker_process_and_only_good_ones_are_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = SignatureCache()
    worker = SignatureWorker(cache, CHAIN, min_batch=4)

    def not_here(tx: Transaction) -> None:
        raise AssertionError("verified in the node's own process")

    monkeypatch.setattr(Transaction, "verify_signature", not_here)
    good = [member_tx(n) for n in range(6)]
    bad = forged(member_tx(6))
    try:
        await worker.check([*good, bad])
        assert isinstance(worker._pool, ProcessPoolExecutor)
    finally:
        worker.close()
    assert all(tx in cache for tx in good)
    assert bad not in cache
    assert cache.verifications == 7


@pytest.mark.parametrize(("processes", "size"), [(1, 15), (0, 40)])
async def test_small_batches_and_a_worker_turned_off_leave_it_to_admission(
    processes: int, size: int
) -> None:
    cache = SignatureCache()
    worker = SignatureWorker(cache, CHAIN, processes=processes, min_batch=16)
    try:
        await worker.check([member_tx(n) for n in range(size)])
        assert worker._pool is None
    finally:
        worker.close()
    assert cache.verifications == 0 and len(cache._ok) == 0


async def test_submitted_batches_are_admitted_and_refused_as_before() -> None:
    node = make_node()
    try:
        txs = [member_tx(n) for n in range(20)]
        txs[7] = forged(txs[7])
        results = await node.submit(txs)
    finally:
        node.signature_worker.close()
    assert [r.code if r else None for r in results[:9]] == [None] * 7 + ["bad_signature", None]
    assert sum(r is None for r in results) == 19
    # admission found all 20 verdicts, the forged one's too: each signature checked once
    # (the forged one is not checked again inline)
    assert node.sigs.hits == 20
    assert node.sigs.verifications == 20


async def test_gossiped_batches_are_checked_by_the_worker_too() -> None:
    node = make_node()
    peer_key = VALIDATOR_KEYS[1].public_key
    try:
        txs = tuple(member_tx(n) for n in range(20))
        await node.gossip.on_message(Peer(peer_key, "v1", None, True), TxBatch(txs))  # type: ignore[arg-type]
    finally:
        node.signature_worker.close()
    assert all(tx.hash in node.mempool for tx in txs)
    assert node.sigs.hits == 20


KILLED_NODE = """
import asyncio, os, signal
from node.sigcache import SignatureCache, SignatureWorker
from tests.unit.node.test_signature_worker import member_tx
from tests.unit.node.chainkit import CHAIN, make_node

async def main():
    worker = SignatureWorker(SignatureCache(), CHAIN, min_batch=1)
    await worker.check([member_tx(0)])
    print(*worker._pool._processes, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no clean-up runs

asyncio.run(main())
"""


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped
    except FileNotFoundError:
        return True


def test_a_killed_node_leaves_no_signature_worker_behind() -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_NODE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    workers = [int(p) for p in done.stdout.split()]
    assert workers
    deadline = time.monotonic() + 10
    while not all(gone(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(p) for p in workers), "a signature worker outlived its node"

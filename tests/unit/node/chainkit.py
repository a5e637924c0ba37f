"""A small real chain for node tests: genesis, executor, and certified commits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.engine import genesis_state
from ledger.block import Block
from ledger.crypto import PrivateKey
from ledger.genesis import Genesis
from ledger.storage import KVStore, MemoryStore
from ledger.tx import Transaction
from ledger.votes import CommitCertificate, Vote, VoteType
from node.chain import ChainStore
from node.config import NodeConfig
from node.executor import ExecutedBlock, Executor
from node.peers import Peer
from node.runtime import Node
from node.sigcache import SignatureCache
from tests.unit.chain_kit import precommit_certificate
from tests.unit.genesis_kit import genesis_from_table, spaced_title

CHAIN = "test-chain"
VALIDATOR_KEYS = [PrivateKey.from_label(f"node-test-validator-{i}") for i in range(4)]
ADMIN = PrivateKey.from_label("node-test-busan-admin")
GENESIS_MS = 1_700_000_000_000


def make_genesis() -> Genesis:
    return genesis_from_table(
        CHAIN,
        GENESIS_MS,
        [(f"v{i}", k) for i, k in enumerate(VALIDATOR_KEYS)],
        {"busan-city": ("agency", [("admin", ("admin",))])},
        member_key=lambda _org, _name: ADMIN,
        city="Busan",
        org_name=spaced_title,
    )


GENESIS = make_genesis()  # shared by the tests: a Genesis is frozen


def make_node(
    key: PrivateKey = VALIDATOR_KEYS[0], store: KVStore | None = None, **options: Any
) -> Node:
    """A node of ``key`` on :data:`GENESIS` over ``store`` (default: a new memory store);
    ``options`` go to :class:`node.runtime.Node` (a signer state file, say)."""
    store = store if store is not None else MemoryStore()
    return Node(NodeConfig(name="under-test"), GENESIS, key, store, **options)


def proposer_index(height: int, round_: int) -> int:
    """Which of :data:`VALIDATOR_KEYS` proposes at (height, round)."""
    key = GENESIS.validators.proposer(height, round_)
    return next(i for i, k in enumerate(VALIDATOR_KEYS) if k.public_key == key)


def certify(block: Block, signers: range = range(3), round_: int = 0) -> CommitCertificate:
    return precommit_certificate(block, [VALIDATOR_KEYS[i] for i in signers], CHAIN, round_)


@dataclass
class Kit:
    store: KVStore = field(default_factory=MemoryStore)
    genesis: Genesis = field(default_factory=make_genesis)

    def __post_init__(self) -> None:
        self.chain = ChainStore(self.store, self.genesis)
        self.chain.initialise(genesis_state(self.genesis))
        self.sigs = SignatureCache()
        self.executor = Executor(self.chain, self.sigs)

    def build(self, txs: list[Transaction], proposer: int = 0) -> ExecutedBlock:
        head = self.chain.head()
        last = self.chain.certificate(head.height) if head.height else None
        return self.executor.build_block(
            txs, head.time_ms + 1000, VALIDATOR_KEYS[proposer].public_key, last
        )

    def commit(self, txs: list[Transaction]) -> ExecutedBlock:
        executed = self.build(txs)
        self.executor.commit(executed, certify(executed.block))
        return executed


def member_tx(nonce: int, payload: dict[str, Any] | None = None) -> Transaction:
    """The admin's ``nonce``-th transaction: a member's registration (or ``payload``)."""
    key = PrivateKey.from_label(f"net-path-{nonce}")
    body = payload or {"public_key": key.public_key, "name": f"m{nonce}", "roles": ["trader"]}
    return Transaction.create(ADMIN, CHAIN, "identity.register_member", nonce, body)


def a_vote(height: int = 1, round_: int = 0) -> Vote:
    """A prevote of the second validator for a block of height ``height``."""
    return Vote.create(VALIDATOR_KEYS[1], CHAIN, VoteType.PREVOTE, height, round_, b"\x01" * 32)


def register_member_tx(nonce: int, label: str, roles: list[str]) -> Transaction:
    key = PrivateKey.from_label(label)
    return Transaction.create(
        ADMIN,
        CHAIN,
        "identity.register_member",
        nonce,
        {"public_key": key.public_key, "name": label, "roles": roles},
    )


def fake_peer(i: int, height: int = 0) -> Peer:
    """A link to validator ``i`` with no socket: what is sent to it stays in its queue."""
    k = VALIDATOR_KEYS[i].public_key
    return Peer(key=k, name=f"v{i}", ws=None, dialed_by_us=True, height=height)  # type: ignore[arg-type]


def sent(peer: Peer) -> list[bytes]:
    """The frames queued for ``peer`` (taken out of its queue)."""
    out = []
    while not peer.queue.empty():
        out.append(peer.queue.get_nowait())
    return out


async def wait_for(what: str, timeout_s: float, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` every 0.1 s until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")

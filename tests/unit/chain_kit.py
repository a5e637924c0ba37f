"""A real chain in memory for the unit tests: certificates and a minimal node handle.

:func:`precommit_certificate` is how the API, CLI and node kits certify the blocks
they commit; :func:`phones_declaration` is the shipment the API and CLI chains declare.
:class:`MemoryNode` is the part of a :class:`~node.handle.NodeHandle` the API and CLI
test nodes have in common: a chain built with the real executor and contracts, a
mempool, an event hub, and transactions signed with each sender's next nonce; every
block it commits carries a certificate from three of the four validators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from contracts.engine import genesis_state
from ledger.block import Block
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.genesis import Genesis
from ledger.head import HeadStatement
from ledger.state import StateTree
from ledger.storage import KVStore, MemoryStore, WriteBatch
from ledger.tx import Transaction
from ledger.votes import CommitCertificate, Vote, VoteType
from node.bounded import ENTRIES, BoundedPart
from node.chain import ChainStore
from node.events import BlockPublished, EventHub
from node.executor import ExecutedBlock, Executor
from node.mempool import Mempool, MempoolError
from node.service import Queries
from node.sigcache import SignatureCache


def phones_declaration(shipment_id: str, container: str, destination: str) -> dict[str, Value]:
    """A ``shipment.declare`` payload: acme ships 500 mobile phones from Shanghai to globex
    at ``destination`` in ``container``."""
    return {
        "id": shipment_id,
        "consignor": "acme",
        "consignee": "globex",
        "declarant": "acme",
        "origin": "CNSHA",
        "destination": destination,
        "goods": [
            {
                "hs_code": "851712",
                "description": "mobile phones",
                "quantity": 500,
                "unit": "PCE",
                "value": 12_500_000,
                "currency": "EUR",
            }
        ],
        "containers": [container],
    }


def precommit_certificate(
    block: Block, keys: Iterable[PrivateKey], chain_id: str, round_: int = 0
) -> CommitCertificate:
    """The certificate of ``block`` made of one precommit at ``round_`` from each key."""
    votes = [
        Vote.create(k, chain_id, VoteType.PRECOMMIT, block.height, round_, block.hash) for k in keys
    ]
    return CommitCertificate.from_votes(votes)


class MemoryNode:
    """A chain over ``store`` from ``genesis``, with the NodeHandle's ``submit``.

    ``key(label)`` is the member key of a label; ``validators`` the genesis
    validators' keys, of which the first three certify every commit.
    """

    def __init__(
        self,
        genesis: Genesis,
        store: KVStore,
        key: Callable[[str], PrivateKey],
        validators: Sequence[PrivateKey],
    ) -> None:
        self.genesis = genesis
        self.store = store
        self.chain = ChainStore(self.store, self.genesis)
        self.chain.initialise(genesis_state(self.genesis))
        self.sigs = SignatureCache()
        self.executor = Executor(self.chain, self.sigs)
        self.queries = Queries(self.chain)
        self.mempool = Mempool(self.genesis, self.sigs, self.latest_state, self.is_committed)
        self.events = EventHub()
        self.last_cert: CommitCertificate | None = None
        self.nonces: dict[bytes, int] = {}
        self.key = key
        self.validator_keys = validators
        self.public_key = key("api-node").public_key
        self.heads: list[HeadStatement] = []  # what head_statements serves (sign_head)

    def head_statements(self, height: int) -> list[HeadStatement]:
        return [s for s in self.heads if s.height == height]

    def bounded_parts(self) -> list[BoundedPart]:
        return [BoundedPart("mempool_txs", ENTRIES, len(self.mempool), self.mempool.max_txs)]

    def sign_head(self, keys: Iterable[PrivateKey], time_ms: int) -> None:
        """Head statements by ``keys`` for the current head at ``time_ms``."""
        head, chain_id = self.chain.head(), self.genesis.chain_id
        self.heads = [
            HeadStatement.create(k, chain_id, head.height, head.block_hash, time_ms) for k in keys
        ]

    async def submit(self, txs: list[Transaction]) -> list[MempoolError | None]:
        out: list[MempoolError | None] = []
        for tx in txs:
            try:
                self.mempool.add(tx)
            except MempoolError as exc:
                out.append(exc)
            else:
                out.append(None)
        return out

    def client_room(self) -> int:
        return 1 << 62  # no latency budget here: everything is taken

    def refuse_over_budget(self, count: int) -> MempoolError:
        return self.mempool.overload_error(count, time.monotonic())

    def latest_state(self) -> StateTree:
        return StateTree(self.store, self.chain.head().state_root)

    def is_committed(self, tx_hash: bytes) -> bool:
        return self.chain.tx_location(tx_hash) is not None

    def tx(self, label: str, kind: str, payload: dict[str, Value]) -> Transaction:
        """A transaction signed by ``label``'s key with its next nonce."""
        signer = self.key(label)
        nonce = self.nonces.get(signer.public_key, 0)
        self.nonces[signer.public_key] = nonce + 1
        return Transaction.create(signer, self.genesis.chain_id, kind, nonce, payload)

    def commit_at(self, txs: list[Transaction], time_ms: int) -> ExecutedBlock:
        """Build the next block of ``txs`` at ``time_ms``, commit it certified, publish it."""
        head = self.chain.head()
        proposer = self.chain.validators_at(head.height + 1).proposer(head.height + 1, 0)
        executed = self.executor.build_block(txs, time_ms, proposer, self.last_cert)
        cert = precommit_certificate(executed.block, self.validator_keys[:3], self.genesis.chain_id)
        self.executor.commit(executed, cert)
        self.last_cert = cert
        self.mempool.update(executed.block.txs)
        self.events.publish(BlockPublished(executed.block, tuple(executed.receipts)))
        return executed


def copy_store(source: KVStore) -> MemoryStore:
    """A memory store holding every row of ``source`` as it is now (to damage a copy, or
    to stand for a read view of it)."""
    out = MemoryStore()
    batch = WriteBatch()
    for k, v in source.iterate(b""):
        batch.put(k, v)
    out.write(batch)
    return out

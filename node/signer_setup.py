"""Opening a validator node's signer: from its state file with that file's start-up
rules (:func:`node.consensus.signer.open_signer`), or in memory only (tests); the
signer reads a block it is about to lock on from the node's driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ledger.crypto import PrivateKey
from ledger.genesis import Genesis
from ledger.storage import KVStore
from node.chain import ChainStore
from node.consensus.signer import Signer, SignerStateFile, open_signer
from node.driver import ConsensusDriver
from node.validator_peers import MAX_CHANGES_READ


@dataclass(frozen=True, slots=True)
class SignerStart:
    """How the node opens its signer, fixed when the node is built: ``path`` of the
    signer state file (None: in memory), whether to ``reset`` it, and the committed
    head the node had when it started (:func:`heights_validated`)."""

    path: str | None
    reset: bool
    head_at_start: int


class SignerHost(Protocol):
    """What :func:`attach_signer` reads of the node (:class:`node.runtime.Node`)."""

    key: PrivateKey
    genesis: Genesis
    store: KVStore
    chain: ChainStore
    signer_start: SignerStart
    signer: Signer | None

    @property
    def driver(self) -> ConsensusDriver: ...


def attach_signer(node: SignerHost) -> None:
    """Open the node's signer (:func:`open_validator_signer`); it reads a block it is
    about to lock on from the driver (built after the signer, so looked up per call)."""
    start = node.signer_start
    validated = heights_validated(node.chain, node.key.public_key, start.head_at_start)
    signer = open_validator_signer(
        node.key, node.genesis, node.store, node.chain, start.path, start.reset, validated
    )

    def block_bytes(block_hash: bytes) -> bytes | None:
        block = node.driver.blocks.get(block_hash)
        return None if block is None else block.encode()

    signer.block_source = block_bytes
    node.signer = signer


def open_validator_signer(
    key: PrivateKey,
    genesis: Genesis,
    store: KVStore,
    chain: ChainStore,
    signer_state: str | None,
    reset: bool,
    validated: int,
) -> Signer:
    """A validator's signer: from its state file (:func:`open_signer`), or in memory only
    (``signer_state`` None: tests). It never signs at or below the committed head.
    ``validated``: :func:`heights_validated`."""

    def committed() -> int:
        return chain.head().height

    if signer_state is None:
        return Signer(key, genesis.chain_id, committed_height=committed)
    return open_signer(
        key,
        genesis.chain_id,
        SignerStateFile(signer_state),
        store,
        chain_height=validated,
        reset=reset,
        committed_height=committed,
    )


def heights_validated(chain: ChainStore, public_key: bytes, head_at_start: int) -> int:
    """The committed head if ``public_key`` could have signed a vote that counts on this
    chain before this node opens its signer, else 0 (open_signer: a missing signer state
    is then a new validator's, not a lost record). It could if it was in a validator set
    at or below the head the node had when it *started*: a node that started as an
    observer and is voted in while it runs has signed nothing here, however far its head
    has moved past the change by the time it notices."""
    if public_key in chain.genesis.validators:
        return chain.head().height
    for effective, validators in chain.validator_changes(0, limit=MAX_CHANGES_READ):
        if effective > head_at_start:
            break
        if public_key in validators:
            return chain.head().height
    return 0

"""Block execution: the one entry point the node calls, plus mempool admission.

Per transaction, in order:

1. chain id must be the genesis chain id, else ``wrong_chain``;
2. nonce must be the sender's next nonce, else ``bad_nonce``;
3. the sender must be a registered member (``unknown_sender``) that is not
   revoked (``revoked``), of an organisation that is not suspended by
   governance (``suspended``: every kind, governance included — a suspended
   organisation's members send nothing until an ``org-unsuspend`` executes).

A transaction failing 1-3 changes nothing at all (not even the nonce). Then the
kind must exist (``unknown_kind``), the sender must hold one of its roles
(``forbidden_role``), the payload must parse, and the handler runs. From here a
refusal consumes the nonce and changes nothing else: the handler's writes sit
in a per-transaction buffer that is merged into the block only on success.

Signatures of transactions are verified by the caller (once, in the mempool);
signatures *inside* payloads (meter readings) are verified here. Same inputs
give byte-identical outcomes: no clock, no randomness, no iteration over
unordered containers leaks into the result, and the change maps are returned in
key order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.context import BlockBuffer, Sender, StateReader, TxContext
from contracts.errors import HTTP_STATUS, ContractError
from contracts.governance_params import GovParams
from contracts.governance_records import is_suspended
from contracts.identity import genesis_identity
from contracts.identity_records import Member
from contracts.params import AppParams
from contracts.registry import HANDLERS
from ledger.block import Receipt
from ledger.encoding import decode, encode
from ledger.errors import DecodeError
from ledger.genesis import Genesis
from ledger.storage.protocol import KVReader
from ledger.tx import Transaction

__all__ = [
    "HTTP_STATUS",
    "BlockOutcome",
    "ContractError",
    "StateReader",
    "check_transaction",
    "execute_block",
    "genesis_state",
    "next_nonce",
]

MAX_MESSAGE = 1000


@dataclass
class BlockOutcome:
    receipts: list[Receipt]  # one per tx, in order
    state_changes: dict[bytes, bytes | None]  # authenticated state writes (None = delete)
    index_changes: dict[bytes, bytes | None]  # secondary index writes, keys under keys.INDEX


def genesis_state(genesis: Genesis) -> dict[bytes, bytes]:
    """The initial authenticated state: founding organisations, members, parameters."""
    state = genesis_identity(genesis)
    state[sk.params_key()] = encode(AppParams.from_genesis(genesis).to_obj())
    GovParams.from_genesis(genesis)  # refuse bad governance parameters here, not mid-block
    return dict(sorted(state.items()))


def next_nonce(state: StateReader, sender: bytes) -> int:
    """The nonce the sender's next transaction must carry (0 for a new key)."""
    raw = state.get(sk.nonce_key(sender))
    if raw is None:
        return 0
    return _nonce(raw)


@functools.lru_cache(maxsize=4096)
def _nonce(raw: bytes) -> int:
    value = decode(raw)
    assert isinstance(value, int)
    return value


def authenticate(state: StateReader, sender: bytes) -> Sender:
    """The registered, non-revoked member behind ``sender``."""
    raw = state.get(sk.member_key(sender))
    if raw is None:
        raise ContractError("unknown_sender", "the sender is not a registered member key")
    active, org, roles = _member(raw)
    if not active:
        raise ContractError("revoked", "the sender's key has been revoked")
    if is_suspended(state, org):
        raise ContractError("suspended", f"the sender's organisation {org!r} is suspended")
    return Sender(sender, org, roles)


@functools.lru_cache(maxsize=4096)
def _member(raw: bytes) -> tuple[bool, str, frozenset[str]]:
    """(active, organisation, roles) of a member record: a pure function of its bytes."""
    member = Member.load(decode(raw))
    return member.active, member.org, frozenset(member.roles)


def _admit(state: StateReader, genesis: Genesis, tx: Transaction, expected: int) -> Sender:
    """Checks 1-3 of the module docstring."""
    if tx.chain_id != genesis.chain_id:
        raise ContractError("wrong_chain", f"transaction is for chain {tx.chain_id!r}")
    if tx.nonce != expected:
        raise ContractError("bad_nonce", f"nonce {tx.nonce} given, {expected} expected")
    return authenticate(state, tx.sender)


# Payloads parsed at admission, by transaction hash, for the execution of the same
# transaction on this node (parse once from mempool to block). A parse is a pure function
# of the payload, which the hash pins together with the kind, and its result is a frozen
# value, so sharing it is safe; a transaction that was never admitted here (a proposal's
# unknown one, catch-up) is parsed at execution. Bounded: oldest dropped first.
_PARSED: dict[bytes, object] = {}
PARSED_CACHE_MAX = 50_000
_NOT_PARSED = object()


def _check_kind(tx: Transaction, sender: Sender, *, keep: bool = False) -> object:
    """Kind known, role allowed, payload well formed; returns the parsed payload.

    ``keep``: remember the parse for this transaction's execution (admission does).
    """
    handler = HANDLERS.get(tx.kind)
    if handler is None:
        raise ContractError("unknown_kind", f"unknown transaction kind {tx.kind!r}")
    if sender.roles.isdisjoint(handler.roles):
        raise ContractError(
            "forbidden_role", f"{tx.kind} needs one of the roles {sorted(handler.roles)}"
        )
    if keep:
        parsed = handler.parse(tx.payload)
        if len(_PARSED) >= PARSED_CACHE_MAX:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[tx.hash] = parsed
        return parsed
    parsed = _PARSED.pop(tx.hash, _NOT_PARSED)
    return handler.parse(tx.payload) if parsed is _NOT_PARSED else parsed


def check_transaction(
    state: StateReader, genesis: Genesis, tx: Transaction, expected_nonce: int | None = None
) -> ContractError | None:
    """Cheap admission check for the mempool (no handler runs, nothing is written).

    ``expected_nonce`` lets the mempool account for its own pending transactions;
    by default the committed next nonce is expected.
    """
    expected = next_nonce(state, tx.sender) if expected_nonce is None else expected_nonce
    try:
        sender = _admit(state, genesis, tx, expected)
        _check_kind(tx, sender, keep=True)
    except ContractError as exc:
        return exc
    return None


def _receipt(tx: Transaction, height: int, index: int, error: ContractError | None) -> Receipt:
    if error is None:
        return Receipt(tx.hash, height, index, "", "", ())
    return Receipt(tx.hash, height, index, error.code, error.message[:MAX_MESSAGE], ())


def _execute_tx(
    block: BlockBuffer,
    genesis: Genesis,
    params: AppParams,
    height: int,
    time_ms: int,
    index: int,
    tx: Transaction,
) -> Receipt:
    expected = next_nonce(block, tx.sender)
    try:
        sender = _admit(block, genesis, tx, expected)
    except ContractError as exc:
        return _receipt(tx, height, index, exc)  # nothing changes, nonce not consumed
    block.state[sk.nonce_key(tx.sender)] = encode(expected + 1)
    ctx = TxContext(block, genesis, params, height, time_ms, tx, sender)
    try:
        payload = _check_kind(tx, sender)
        HANDLERS[tx.kind].apply(ctx, payload)
    except ContractError as exc:
        return _receipt(tx, height, index, exc)  # buffered writes dropped, nonce consumed
    except DecodeError as exc:  # a record that cannot be encoded (a value out of range)
        error = ContractError("limit_exceeded", f"a value is out of range: {exc}")
        return _receipt(tx, height, index, error)
    ctx.commit()
    return Receipt(tx.hash, height, index, "", "", tuple(ctx.events))


def execute_block(
    state: StateReader,
    index: KVReader,
    genesis: Genesis,
    height: int,
    time_ms: int,
    txs: Sequence[Transaction],
) -> BlockOutcome:
    """Run ``txs`` in order against ``state`` plus this block's own pending writes.

    ``index`` is accepted for the node's convenience but never read: every
    decision rests on authenticated state, so a node with a damaged or rebuilt
    index still computes the same state root.
    """
    del index
    raw_params = state.get(sk.params_key())
    params = (
        AppParams.from_genesis(genesis) if raw_params is None else AppParams.from_stored(raw_params)
    )
    block = BlockBuffer(state)
    receipts = [
        _execute_tx(block, genesis, params, height, time_ms, i, tx) for i, tx in enumerate(txs)
    ]
    return BlockOutcome(
        receipts=receipts,
        state_changes=dict(sorted(block.state.items())),
        index_changes=dict(sorted(block.index.items())),
    )

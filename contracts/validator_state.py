"""The validator set in authenticated state: the set in force, the next one, the updates a
block schedules, and the height each validator last signed at.

After block h is executed the state holds (absent = the genesis set):

=================================  ===============================================
``validators/current``             the set that votes on block h+1
``validators/next``                the set that votes on block h+2
``validators/signed/<hex>``        the highest height whose commit certificate (as
                                   carried in a block's ``last_cert``) this key signed
=================================  ===============================================

While block h+1 runs, ``schedule_validator_updates`` builds the set for h+3 under the
block-local key ``validators/pending`` (merged in order; a refused transaction's
updates go with its other writes); :func:`close_block` then moves ``next`` to
``current`` and ``pending`` to ``next`` and never lets ``pending`` reach the state. So a
change scheduled at height H is in force from H+2, and header h's ``validators_hash``
and ``next_validators_hash`` are the ``current`` and ``next`` of the state it runs on
(docs/consensus.md, "Validator-set changes"). A key is written only when its value
changes, so a chain whose set never changes carries no validator rows but the signed
heights.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Protocol

from contracts.errors import ContractError
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.validators import ValidatorSet, ValidatorUpdate, apply_updates
from ledger.votes import CommitCertificate

CURRENT = b"validators/current"
NEXT = b"validators/next"
PENDING = b"validators/pending"
_SIGNED = "validators/signed/"


class Reader(Protocol):
    """What these functions read: committed or block-buffered state."""

    def get(self, key: bytes) -> bytes | None: ...


def signed_key(public_key: bytes) -> bytes:
    return (_SIGNED + public_key.hex()).encode()


@functools.lru_cache(maxsize=64)
def decode_set(raw: bytes) -> ValidatorSet:
    """A stored set (a pure function of its bytes, so cached)."""
    return ValidatorSet.from_obj(decode(raw))


def encode_set(validators: ValidatorSet) -> bytes:
    return encode(validators.to_obj())


def read_set(state: Reader, key: bytes, genesis: Genesis) -> ValidatorSet:
    raw = state.get(key)
    return genesis.validators if raw is None else decode_set(raw)


def current_set(state: Reader, genesis: Genesis) -> ValidatorSet:
    """The set that votes on the block executed on ``state``."""
    return read_set(state, CURRENT, genesis)


def next_set(state: Reader, genesis: Genesis) -> ValidatorSet:
    """The set that votes on the block after it."""
    return read_set(state, NEXT, genesis)


def scheduled_set(
    state: Reader, genesis: Genesis, updates: Sequence[ValidatorUpdate]
) -> tuple[bytes, bytes]:
    """(``PENDING``, the encoded set ``updates`` make of what this block scheduled so far);
    ``wrong_state`` if they do not apply."""
    raw = state.get(PENDING)
    base = decode_set(raw) if raw is not None else next_set(state, genesis)
    try:
        return PENDING, encode_set(apply_updates(base, updates))
    except LedgerError as exc:
        raise ContractError("wrong_state", f"validator updates: {exc}") from None


def last_signed(state: Reader, public_key: bytes) -> int | None:
    raw = state.get(signed_key(public_key))
    if raw is None:
        return None
    height = decode(raw)
    assert isinstance(height, int), "a signed height is an int"
    return height


def signer_rows(cert: CommitCertificate | None) -> dict[bytes, bytes]:
    """The signed-height rows block h writes for its ``last_cert`` (of h-1), before its
    transactions run: one row per signer."""
    if cert is None:
        return {}
    height = encode(cert.height)
    return {signed_key(key): height for key in sorted(cert.signers)}


def close_block(
    state: Reader, genesis: Genesis, changes: dict[bytes, bytes | None]
) -> ValidatorSet | None:
    """Move ``next`` to ``current`` and the block's ``pending`` to ``next`` in ``changes``
    (the block's state writes; ``state`` is the state the block ran on). Returns the set
    for two heights on when the block changed it, else ``None``."""
    pending = changes.pop(PENDING, None)
    now, upcoming = state.get(CURRENT), state.get(NEXT)
    if upcoming != now:
        changes[CURRENT] = upcoming if upcoming is not None else encode_set(genesis.validators)
    if pending is None:
        return None
    if pending == (upcoming if upcoming is not None else encode_set(genesis.validators)):
        return None
    changes[NEXT] = pending
    return decode_set(pending)

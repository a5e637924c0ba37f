"""The signatures inside transaction payloads, for checking ahead of execution.

A meter's signature over its reading is checked by the contract each time a block runs
(``energy.submit_reading``); the node hands the ones listed here to its signature
worker first (node/sigcache.py), which records each good verdict in
:mod:`ledger.verdicts`, and the contract then finds it. Only a reading that looks well
formed is listed: anything else is left to the contract, which refuses it as it always
did. Listing a signature decides nothing: execution still checks (or finds) every one.
"""

from __future__ import annotations

from contracts.energy import reading_message
from ledger.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, Purpose, signing_bytes
from ledger.errors import LedgerError
from ledger.tx import Transaction

READING_KIND = "energy.submit_reading"
_READING_INTS = ("interval_start_ms", "produced_wh", "consumed_wh")


def payload_signature(tx: Transaction) -> tuple[bytes, bytes, bytes] | None:
    """(public key, signature, signed bytes) of the signature in ``tx``'s payload, for
    the kinds that carry one; None otherwise."""
    if tx.kind != READING_KIND:
        return None
    p = tx.payload
    key, signature = p.get("meter_key"), p.get("signature")
    if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_SIZE:
        return None
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        return None
    ints = [p.get(name) for name in _READING_INTS]
    if not all(type(v) is int and v >= 0 for v in ints):
        return None
    start, produced, consumed = ints
    assert isinstance(start, int) and isinstance(produced, int) and isinstance(consumed, int)
    try:
        message = reading_message(key, start, produced, consumed)
        return key, signature, signing_bytes(Purpose.METER_READING, tx.chain_id, message)
    except LedgerError:
        return None

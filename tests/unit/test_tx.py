"""Transactions: identity, signatures, strict decoding."""

from __future__ import annotations

import pytest

from ledger.crypto import PrivateKey
from ledger.encoding import encode
from ledger.errors import DecodeError, SignatureError, ValidationError
from ledger.tx import Transaction

KEY = PrivateKey.from_label("trader")


def make(nonce: int = 0, **payload: object) -> Transaction:
    return Transaction.create(
        KEY, "test-chain", "shipment.declare", nonce, dict(payload) or {"id": "S1"}
    )


def test_round_trip_and_signature() -> None:
    tx = make()
    again = Transaction.decode(tx.encode())
    assert again == tx
    assert again.hash == tx.hash
    again.verify_signature()


def test_hash_is_over_the_signed_body_not_the_signature() -> None:
    tx = make()
    other_sig = Transaction(tx.kind, tx.chain_id, tx.sender, tx.nonce, tx.payload, bytes(64))
    assert other_sig.hash == tx.hash
    with pytest.raises(SignatureError):
        other_sig.verify_signature()
    assert make(nonce=1).hash != tx.hash


def test_tampered_fields_break_the_signature() -> None:
    tx = make()
    for forged in (
        Transaction(tx.kind, tx.chain_id, tx.sender, 1, tx.payload, tx.signature),
        Transaction(tx.kind, "other-chain", tx.sender, 0, tx.payload, tx.signature),
        Transaction("shipment.deliver", tx.chain_id, tx.sender, 0, tx.payload, tx.signature),
        Transaction(tx.kind, tx.chain_id, tx.sender, 0, {"id": "S2"}, tx.signature),
        Transaction(
            tx.kind, tx.chain_id, PrivateKey.from_label("x").public_key, 0, tx.payload, tx.signature
        ),
    ):
        with pytest.raises(SignatureError):
            forged.verify_signature()


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "Shipment"},
        {"kind": "nodot"},
        {"chain_id": "Bad Chain"},
        {"nonce": -1},
        {"sender": b"\x00" * 31},
        {"signature": b"\x00" * 63},
        {"payload": [1]},
    ],
)
def test_invalid_fields_are_rejected(change: dict[str, object]) -> None:
    obj = make().to_obj() | change
    with pytest.raises(DecodeError):
        Transaction.from_obj(obj)


def test_decode_rejects_non_canonical_and_extra_fields() -> None:
    tx = make()
    with pytest.raises(DecodeError):
        Transaction.decode(tx.encode() + b"\x00")
    with pytest.raises(DecodeError, match="unknown fields"):
        Transaction.from_obj(tx.to_obj() | {"memo": "x"})


def test_oversize_payload_is_refused() -> None:
    with pytest.raises(ValidationError):
        make(blob=b"x" * 70_000)
    assert len(encode(make(blob=b"x" * 60_000).to_obj())) > 60_000

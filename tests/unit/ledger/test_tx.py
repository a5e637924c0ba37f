"""Transactions: identity, signatures, strict decoding."""

from __future__ import annotations

import pytest

from ledger.block import ZERO_HASH, Block, BlockHeader, Event, Receipt, compute_tx_root
from ledger.crypto import PrivateKey
from ledger.encoding import decode, encode
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


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "Shipment"},
        {"kind": "a.b" * 30},
        {"chain_id": "Bad Chain"},
        {"nonce": -1},
        {"nonce": 2**63},
        {"nonce": True},
        {"sender": b"\x00" * 31},
        {"signature": b"\x00" * 63},
        {"payload": [1]},
        {"kind": 7},
    ],
)
def test_decoded_fast_path_refuses_what_the_checked_path_refuses(
    change: dict[str, object],
) -> None:
    """from_obj(decoded=True) takes a fast path for exact types; same outcome, same words."""
    obj = make().to_obj() | change
    with pytest.raises(DecodeError) as checked:
        Transaction.from_obj(obj)
    with pytest.raises(DecodeError) as fast:
        Transaction.from_obj(obj, decoded=True)
    assert str(fast.value) == str(checked.value)


def test_decoded_fast_path_gives_the_same_transaction() -> None:
    tx = make(3, shipment_id="S1", n=5, tags=["a", "b"], sub={"x": b"\x01"})
    again = Transaction.from_obj(decode(tx.encode()), decoded=True)
    assert again == tx and again.hash == tx.hash and again.body == tx.body
    assert again.encode() == tx.encode() == encode(tx.to_obj())


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


# --- the encodings built from cached bytes equal the canonical encoding of to_obj() -------------


PAYLOADS = [
    {"id": "S1"},
    {"z": 1, "a": [1, {"y": b"\x00", "b": None}], "m": {"k": True}},  # keys out of order
    {"text": "é€\u2028", "big": 2**64 - 1, "neg": -(2**63), "list": list(range(20))},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_transaction_bytes_equal_the_canonical_encoding(payload: dict[str, object]) -> None:
    tx = Transaction.create(KEY, "test-chain", "shipment.declare", 7, payload)
    assert tx.encode() == encode(tx.to_obj())
    assert tx.body == encode(tx.body_obj())
    again = Transaction.decode(tx.encode())  # the decoded path packs the body as it is
    assert (again, again.body, again.hash) == (tx, tx.body, tx.hash)
    plain = Transaction.from_obj(decode(tx.encode()))
    assert (plain.body, plain.hash) == (tx.body, tx.hash)


@pytest.mark.parametrize("count", [0, 1, 15, 16, 300])
def test_block_and_receipt_bytes_equal_the_canonical_encoding(count: int) -> None:
    txs = tuple(
        Transaction.create(KEY, "test-chain", "shipment.declare", n, PAYLOADS[n % 3])
        for n in range(count)
    )
    header = BlockHeader(
        "test-chain", 1, 5, bytes(32), bytes(range(32)), count, compute_tx_root(txs),
        count, bytes(32), bytes(32), bytes(32), bytes(32), bytes(32), ZERO_HASH, bytes(32),
    )  # fmt: skip
    block = Block(header, txs, None)
    assert block.encode() == encode(block.to_obj())
    assert Block.decode(block.encode()) == block
    assert header.encoded == encode(header.to_obj())
    events = (Event("shipment.milestone", {"z": 1, "a": {"y": [b"x"], "b": "c"}}),)
    for receipt in (
        Receipt(bytes(32), 3, 1, "", "", ()),
        Receipt(bytes(32), 3, 1, "bad_nonce", "nonce 1 given", events),
    ):
        assert receipt.encode() == encode(receipt.to_obj())
        assert Receipt.decode(receipt.encode()) == receipt


def test_receipt_with_a_value_out_of_range_is_refused() -> None:
    with pytest.raises(DecodeError):
        Receipt(bytes(32), 3, 1, "", "", (Event("x", {"n": 2**64}),))

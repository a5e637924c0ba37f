"""Signatures inside payloads (a meter's over its reading) checked ahead of execution in
the signature worker (contracts/signed_payloads.py, ledger/verdicts.py, node/sigcache.py):
a good verdict spares execution its Ed25519 check, and answers for nothing else."""

from __future__ import annotations

import dataclasses
import multiprocessing

import pytest

from contracts.energy import sign_reading
from contracts.signed_payloads import payload_signature
from ledger import verdicts
from ledger.crypto import PrivateKey, Purpose, is_valid_signature, signing_bytes
from ledger.tx import Transaction
from node.audit import check_payloads_ahead
from node.sigcache import SignatureCache, SignatureWorker
from tests.unit.node.chainkit import CHAIN

OWNER = PrivateKey.from_label("payload-sig-owner")
METER = PrivateKey.from_label("payload-sig-meter")


def reading_tx(nonce: int, produced: int = 100, *, forged: bool = False) -> Transaction:
    start = 900_000 * (nonce + 1)
    signature = sign_reading(METER, CHAIN, start, produced, 0)
    if forged:
        signature = bytes(64)
    payload = {
        "meter_key": METER.public_key,
        "interval_start_ms": start,
        "produced_wh": produced,
        "consumed_wh": 0,
        "signature": signature,
    }
    return Transaction.create(OWNER, CHAIN, "energy.submit_reading", nonce, payload)


@pytest.fixture(autouse=True)
def fresh_verdicts(monkeypatch: pytest.MonkeyPatch) -> verdicts.GoodSignatures:
    table = verdicts.GoodSignatures(capacity=8)
    monkeypatch.setattr(verdicts, "GOOD", table)
    monkeypatch.setattr("ledger.crypto.GOOD", table)
    monkeypatch.setattr("node.sigcache.GOOD", table)
    return table


def test_a_reading_lists_the_meter_signature_as_the_contract_checks_it() -> None:
    tx = reading_tx(1)
    found = payload_signature(tx)
    assert found is not None
    key, signature, signed = found
    assert key == METER.public_key and signature == tx.payload["signature"]
    message = signed[len(signing_bytes(Purpose.METER_READING, CHAIN, b"")) :]
    assert is_valid_signature(key, Purpose.METER_READING, CHAIN, message, signature)


@pytest.mark.parametrize(
    "change",
    [
        {"meter_key": b"short"},
        {"signature": "not bytes"},
        {"produced_wh": -1},
        {"produced_wh": True},
        {"consumed_wh": None},
    ],
)
def test_a_malformed_reading_is_left_to_the_contract(change: dict[str, object]) -> None:
    tx = reading_tx(1)
    odd = dataclasses.replace(tx, payload={**tx.payload, **change})
    assert payload_signature(odd) is None


def test_other_kinds_carry_none() -> None:
    tx = Transaction.create(OWNER, CHAIN, "energy.credit_balance", 1, {"account": "a"})
    assert payload_signature(tx) is None


def test_a_good_verdict_answers_only_for_the_same_key_signature_and_bytes(
    fresh_verdicts: verdicts.GoodSignatures, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = payload_signature(reading_tx(1))
    assert found is not None
    key, signature, signed = found
    fresh_verdicts.add(verdicts.verdict_key(key, signature, signed))
    message = signed[len(signing_bytes(Purpose.METER_READING, CHAIN, b"")) :]

    def no_ed25519(*args: object) -> None:
        raise AssertionError("checked again")

    with monkeypatch.context() as m:
        m.setattr("ledger.crypto.verify", no_ed25519)
        assert is_valid_signature(key, Purpose.METER_READING, CHAIN, message, signature)
    assert fresh_verdicts.hits == 1
    # the same signature over other bytes, for another chain or purpose, or by another key
    assert not is_valid_signature(key, Purpose.METER_READING, CHAIN, message + b"x", signature)
    assert not is_valid_signature(key, Purpose.METER_READING, "other-chain", message, signature)
    assert not is_valid_signature(key, Purpose.TRANSACTION, CHAIN, message, signature)
    assert not is_valid_signature(
        OWNER.public_key, Purpose.METER_READING, CHAIN, message, signature
    )
    assert fresh_verdicts.hits == 1


def test_the_table_is_bounded(fresh_verdicts: verdicts.GoodSignatures) -> None:
    for n in range(20):
        fresh_verdicts.add(bytes([n]) * 32)
    assert len(fresh_verdicts) == 8
    assert bytes([19]) * 32 in fresh_verdicts and bytes([0]) * 32 not in fresh_verdicts


async def test_the_worker_records_good_payload_signatures_and_not_bad_ones(
    fresh_verdicts: verdicts.GoodSignatures,
) -> None:
    good = [reading_tx(n) for n in range(5)]
    bad = reading_tx(5, forged=True)
    worker = SignatureWorker(SignatureCache(), CHAIN, min_batch=4)
    try:
        await worker.check([*good, bad], signatures=False)
    finally:
        worker.close()
    assert len(fresh_verdicts) == 5
    for tx in good:
        found = payload_signature(tx)
        assert found is not None and verdicts.verdict_key(*found) in fresh_verdicts
    found = payload_signature(bad)
    assert found is not None and verdicts.verdict_key(*found) not in fresh_verdicts
    assert worker.cache.verifications == 0  # signatures=False: the transactions' own are not


async def test_admission_checks_both_in_one_job(fresh_verdicts: verdicts.GoodSignatures) -> None:
    txs = [reading_tx(n) for n in range(4)]
    cache = SignatureCache()
    worker = SignatureWorker(cache, CHAIN, min_batch=4)
    try:
        await worker.check(txs)
    finally:
        worker.close()
    assert all(tx in cache for tx in txs) and len(fresh_verdicts) == 4


def test_the_offline_audit_has_its_pool_check_payload_signatures_ahead(
    fresh_verdicts: verdicts.GoodSignatures,
) -> None:
    """node/audit.py: a chunk's meter signatures go to the audit's pool before the chunk
    executes; the good ones come back as verdicts, the forged one does not."""
    good = [reading_tx(n) for n in range(5)]
    bad = reading_tx(5, forged=True)
    pool = multiprocessing.get_context("fork").Pool(1)
    try:
        check_payloads_ahead(CHAIN, [*good, bad], pool)
    finally:
        pool.close()
        pool.join()  # and the result thread, which records the verdicts
    for tx in good:
        found = payload_signature(tx)
        assert found is not None and verdicts.verdict_key(*found) in fresh_verdicts
    found = payload_signature(bad)
    assert found is not None and verdicts.verdict_key(*found) not in fresh_verdicts
    assert len(fresh_verdicts) == 5

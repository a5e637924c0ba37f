"""The execution engine: admission order, nonces, buffering, determinism, mempool checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from contracts import registry
from contracts import state_keys as sk
from contracts.context import Handler, TxContext
from contracts.engine import (
    ContractError,
    check_transaction,
    execute_block,
    genesis_state,
    next_nonce,
)
from contracts.errors import HTTP_STATUS
from ledger.crypto import PrivateKey
from ledger.encoding import decode
from ledger.tx import Transaction

from .harness import CHAIN_ID, Chain, DictState, key, make_genesis, member_key

ADMIN = member_key("exporter", "admin")
NEWBIE = key("newbie")


def register_payload(k: bytes = NEWBIE.public_key) -> dict[str, object]:
    return {"public_key": k, "name": "newbie", "roles": ["trader"]}


SHOP_PERMIT = {"id": "P1", "type": "business", "address": "1 Main St", "description": "shop"}
"""The permit NEWBIE applies for once registered."""


def register_then_apply() -> list[tuple[PrivateKey, str, dict[str, object]]]:
    """The admin registers NEWBIE, who then applies for :data:`SHOP_PERMIT`."""
    return [
        (ADMIN, "identity.register_member", register_payload()),
        (NEWBIE, "permit.apply", SHOP_PERMIT),
    ]


def test_genesis_state_holds_orgs_members_and_params() -> None:
    genesis = make_genesis()
    state = genesis_state(genesis)
    org = decode(state[sk.org_key("exporter")])
    assert org["founding"] and org["kind"] == "trader" and len(org["members"]) == 2
    member = decode(state[sk.member_key(ADMIN.public_key)])
    assert member == {
        "public_key": ADMIN.public_key,
        "org": "exporter",
        "roles": ["admin"],
        "name": "admin",
        "status": "active",
        "registered_height": 0,
        "revoked_height": None,
        "revoked_reason": "",
    }
    assert decode(state[sk.params_key()]) == {
        "energy_interval_ms": 900_000,
        "max_event_age_ms": 90 * 86_400_000,
        "max_meter_power_w": 1_000_000,
        "max_reading_age_ms": 7 * 86_400_000,
        "restricted_hs_codes": ["360100", "9302"],
        "settlement_delay_ms": 900_000,
    }
    assert list(state) == sorted(state)


def test_nonce_starts_at_zero_and_counts_up() -> None:
    chain = Chain()
    assert next_nonce(chain.state, ADMIN.public_key) == 0
    chain.ok(ADMIN, "identity.register_member", register_payload())
    assert next_nonce(chain.state, ADMIN.public_key) == 1


@pytest.mark.parametrize("nonce", [1, 5])
def test_bad_nonce_changes_nothing(nonce: int) -> None:
    chain = Chain()
    before = dict(chain.state.data)
    tx = chain.tx(ADMIN, "identity.register_member", register_payload(), nonce=nonce)
    receipt = chain.block([tx]).receipts[0]
    assert receipt.code == "bad_nonce" and "0 expected" in receipt.message
    assert chain.state.data == before and chain.outcomes[-1].state_changes == {}


def test_replay_of_a_committed_transaction_is_a_bad_nonce() -> None:
    chain = Chain()
    tx = chain.tx(ADMIN, "identity.register_member", register_payload())
    assert chain.block([tx]).receipts[0].ok
    again = chain.block([tx]).receipts[0]
    assert again.code == "bad_nonce"
    assert chain.outcomes[-1].state_changes == {}


def test_wrong_chain_changes_nothing() -> None:
    chain = Chain()
    tx = Transaction.create(ADMIN, "other-chain", "identity.register_member", 0, register_payload())
    receipt = chain.block([tx]).receipts[0]
    assert receipt.code == "wrong_chain"
    assert chain.outcomes[-1].state_changes == {}


def test_unknown_sender_changes_nothing() -> None:
    chain = Chain()
    receipt = chain.send(NEWBIE, "identity.register_member", register_payload(key("x").public_key))
    assert receipt.code == "unknown_sender"
    assert chain.outcomes[-1].state_changes == {}


def test_revoked_key_can_send_nothing() -> None:
    chain = Chain()
    chain.ok(ADMIN, "identity.register_member", register_payload())
    chain.ok(ADMIN, "identity.revoke_member", {"public_key": NEWBIE.public_key, "reason": "lost"})
    receipt = chain.send(NEWBIE, "permit.apply", SHOP_PERMIT)
    assert receipt.code == "revoked"
    assert chain.outcomes[-1].state_changes == {}
    err = check_transaction(chain.state, chain.genesis, chain.tx(NEWBIE, "permit.apply", {}))
    assert err is not None and err.code == "revoked" and err.http_status == 403


def test_unknown_kind_and_forbidden_role_consume_the_nonce_only() -> None:
    chain = Chain()
    chain.fails("unknown_kind", ADMIN, "identity.frobnicate", {})
    chain.fails("forbidden_role", ADMIN, "shipment.customs_decision", {})
    chain.fails("bad_payload", ADMIN, "identity.register_member", {"public_key": b"x"})
    assert next_nonce(chain.state, ADMIN.public_key) == 3


def test_a_refused_handler_leaves_no_half_write(monkeypatch: pytest.MonkeyPatch) -> None:
    def half_then_fail(ctx: TxContext, payload: object) -> None:
        ctx.store(b"org/evil", {"id": "evil"})
        ctx.index_put(b"\x01iboom", b"x")
        ctx.emit("evil", {})
        raise ContractError("wrong_state", "changed my mind")

    handler = Handler("test.half", frozenset({"admin"}), lambda p: p, half_then_fail, "")
    monkeypatch.setitem(registry.HANDLERS, "test.half", handler)
    chain = Chain()
    receipt = chain.fails("wrong_state", ADMIN, "test.half", {})
    assert receipt.message == "changed my mind"
    assert chain.state.get(b"org/evil") is None
    assert chain.outcomes[-1].index_changes == {}


def test_later_transactions_see_earlier_writes_of_the_same_block() -> None:
    chain = Chain()
    revoke = (ADMIN, "identity.revoke_member", {"public_key": NEWBIE.public_key, "reason": "x"})
    txs = chain.batch([*register_then_apply(), revoke])
    txs.append(chain.tx(NEWBIE, "permit.apply", {}, nonce=1))
    receipts = chain.block(txs).receipts
    assert [r.code for r in receipts] == ["", "", "", "revoked"]
    assert [r.index for r in receipts] == [0, 1, 2, 3]
    assert all(r.height == 1 and r.tx_hash == t.hash for r, t in zip(receipts, txs, strict=True))


def test_outcome_is_deterministic_and_key_ordered() -> None:
    def run() -> tuple[list[bytes], list[tuple[bytes, bytes | None]], list[object]]:
        chain = Chain()
        txs = chain.batch(register_then_apply())
        out = chain.block(txs)
        return (
            [r.encode() for r in out.receipts],
            list(out.state_changes.items()),
            list(out.index_changes.items()),
        )

    first, second = run(), run()
    assert first == second
    keys = [k for k, _ in first[1]]
    assert keys == sorted(keys)


def test_the_index_is_never_read() -> None:
    class Exploding:
        def get(self, key: bytes) -> bytes | None:
            raise AssertionError("index read")

        def iterate(self, prefix: bytes, **kw: object) -> object:
            raise AssertionError("index read")

    genesis = make_genesis()
    state = DictState(genesis_state(genesis))
    tx = Transaction.create(ADMIN, CHAIN_ID, "identity.register_member", 0, register_payload())
    out = execute_block(state, Exploding(), genesis, 1, 1, [tx])  # type: ignore[arg-type]
    assert out.receipts[0].ok


def test_check_transaction() -> None:
    chain = Chain()
    good = chain.tx(ADMIN, "identity.register_member", register_payload())
    assert check_transaction(chain.state, chain.genesis, good) is None
    future = chain.tx(ADMIN, "identity.register_member", register_payload(), nonce=1)
    assert check_transaction(chain.state, chain.genesis, future).code == "bad_nonce"  # type: ignore[union-attr]
    assert check_transaction(chain.state, chain.genesis, future, expected_nonce=1) is None
    bad = chain.tx(ADMIN, "identity.register_member", {"name": "x"})
    err = check_transaction(chain.state, chain.genesis, bad)
    assert err is not None and err.code == "bad_payload" and err.http_status == 400
    wrong_role = chain.tx(ADMIN, "energy.settle", {"interval_start_ms": 0})
    err = check_transaction(chain.state, chain.genesis, wrong_role)
    assert err is not None and err.code == "forbidden_role" and err.http_status == 403
    stranger = chain.tx(NEWBIE, "permit.apply", {})
    assert check_transaction(chain.state, chain.genesis, stranger).code == "unknown_sender"  # type: ignore[union-attr]


def test_every_error_code_has_an_http_status() -> None:
    assert HTTP_STATUS["bad_nonce"] == 409 and HTTP_STATUS["not_found"] == 404
    assert HTTP_STATUS["forbidden_role"] == 403 and HTTP_STATUS["bad_payload"] == 400
    with pytest.raises(ValueError):
        ContractError("no_such_code", "x")
    assert ContractError("duplicate", "x").http_status == 409


def test_every_kind_is_documented() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "contracts.md").read_text(encoding="utf-8")
    for kind in registry.tx_kinds():
        assert f"`{kind}`" in doc, kind
    for code in HTTP_STATUS:
        assert f"`{code}`" in doc, code


def test_admission_parse_is_reused_once_at_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload parsed at admission is the one executed; anything else parses again."""
    from contracts import engine

    chain = Chain()
    admitted = chain.tx(ADMIN, "identity.register_member", register_payload())
    handler = registry.HANDLERS["identity.register_member"]
    parses: list[object] = []
    real_parse = handler.parse

    def counting_parse(payload: object) -> object:
        parses.append(payload)
        return real_parse(payload)

    monkeypatch.setitem(
        registry.HANDLERS,
        "identity.register_member",
        dataclasses.replace(handler, parse=counting_parse),
    )
    assert check_transaction(chain.state, chain.genesis, admitted) is None
    assert len(parses) == 1 and admitted.hash in engine._PARSED
    assert chain.block([admitted]).receipts[0].ok
    assert len(parses) == 1, "execution used the admission's parse"
    assert admitted.hash not in engine._PARSED, "used once, then forgotten"


def test_parse_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from contracts import engine

    monkeypatch.setattr(engine, "PARSED_CACHE_MAX", 2)
    monkeypatch.setattr(engine, "_PARSED", {})
    chain = Chain()
    txs = [chain.tx(ADMIN, "identity.register_member", register_payload(key(f"k{i}").public_key),
                    nonce=i) for i in range(3)]  # fmt: skip
    for tx in txs:
        assert check_transaction(chain.state, chain.genesis, tx, expected_nonce=tx.nonce) is None
    assert list(engine._PARSED) == [txs[1].hash, txs[2].hash]

"""Read rules per record type, by record and by raw state key; state key kinds."""

from __future__ import annotations

import pytest

from contracts import queries
from contracts import state_keys as sk
from contracts.energy_records import Trade
from contracts.read_rules import Reader, may_read, may_read_key, reader_for

from .harness import Chain, key, member_key
from .test_energy import funded, interval, order
from .test_shipments import CARRIER_A, EXPORTER, declared

PUBLIC = Reader.public()


def reader(org: str, *roles: str) -> Reader:
    return Reader(org, frozenset(roles))


def test_reader_for_keys() -> None:
    chain = Chain()
    assert reader_for(chain.state, None) == PUBLIC
    assert reader_for(chain.state, key("stranger").public_key) == PUBLIC
    assert reader_for(chain.state, member_key("customs", "officer").public_key) == reader(
        "customs", "customs"
    )
    chain.ok(
        member_key("exporter", "admin"),
        "identity.revoke_member",
        {"public_key": EXPORTER.public_key, "reason": "left"},
    )
    assert reader_for(chain.state, EXPORTER.public_key) == PUBLIC


def test_shipment_rules() -> None:
    chain = declared()
    chain.ok(EXPORTER, "shipment.offer_custody", {"shipment_id": "SHP-1", "to": "carrier-a"})
    s = queries.get_shipment(chain.state, "SHP-1")
    assert s is not None
    for org in ("exporter", "importer", "broker", "carrier-a"):  # carrier-a: open offer
        assert may_read("shipment", s, reader(org, "trader"))
    for role in ("customs", "port", "auditor"):
        assert may_read("shipment", s, reader("some-agency", role))
    assert not may_read("shipment", s, reader("carrier-b", "carrier"))
    assert not may_read("shipment", s, reader("permits", "permit_office"))
    assert not may_read("shipment", s, PUBLIC)
    chain.ok(CARRIER_A, "shipment.accept_custody", {"shipment_id": "SHP-1"})
    chain.ok(CARRIER_A, "shipment.offer_custody", {"shipment_id": "SHP-1", "to": "carrier-b"})
    chain.ok(member_key("carrier-b", "ops"), "shipment.accept_custody", {"shipment_id": "SHP-1"})
    s = queries.get_shipment(chain.state, "SHP-1")
    assert s is not None
    assert may_read("shipment", s, reader("carrier-a", "carrier"))  # held it once


def test_rules_by_state_key() -> None:
    chain = declared()
    entry_key = sk.shipment_history_key("SHP-1", 0)
    assert may_read_key(chain.state, entry_key, reader("importer", "trader"))
    assert not may_read_key(chain.state, entry_key, reader("carrier-b", "carrier"))
    assert not may_read_key(chain.state, sk.shipment_key("SHP-1"), PUBLIC)
    # absence is guarded like presence: no oracle for which confidential ids exist
    assert not may_read_key(chain.state, sk.shipment_key("NOPE"), PUBLIC)
    assert not may_read_key(chain.state, sk.shipment_key("NOPE"), reader("importer", "trader"))
    assert may_read_key(chain.state, sk.shipment_key("NOPE"), reader("customs", "customs"))
    assert may_read_key(chain.state, sk.permit_key("NOPE"), PUBLIC)  # permits are public
    assert may_read_key(chain.state, sk.org_key("customs"), PUBLIC)
    assert may_read_key(chain.state, sk.params_key(), PUBLIC)
    assert not may_read_key(chain.state, b"\xff\xfe", PUBLIC)  # no such record: auditors
    assert may_read_key(chain.state, b"\xff\xfe", reader("audit", "auditor"))
    assert not may_read_key(chain.state, b"energy/meter/zz/r/0", PUBLIC)
    assert may_read_key(
        chain.state, sk.energy_account_key("importer"), reader("importer", "trader")
    )
    assert not may_read_key(chain.state, sk.energy_account_key("nobody"), reader("importer", "x"))


def test_energy_rules() -> None:
    chain = funded()
    start = interval(chain)
    r = chain.ok(
        member_key("solar-1", "owner"), "energy.place_order", order(start, "offer", 10, 100)
    )
    order_key = sk.order_key(r.events[0].attrs["order"])
    account_key = sk.energy_account_key("solar-1")
    position_key = sk.energy_position_key("solar-1", start)
    owner, other = reader("solar-1", "prosumer"), reader("solar-2", "prosumer")
    regulator, auditor = reader("energy", "energy_regulator"), reader("audit", "auditor")
    for k in (order_key, account_key, position_key):
        assert may_read_key(chain.state, k, owner)
        assert not may_read_key(chain.state, k, other)
        assert may_read_key(chain.state, k, regulator) and may_read_key(chain.state, k, auditor)
        assert not may_read_key(chain.state, k, PUBLIC)
    market = sk.market_key(start)
    assert may_read_key(chain.state, market, other)
    assert not may_read_key(chain.state, market, reader("exporter", "trader"))
    meter = queries.get_meter(chain.state, key("meter/solar-1").public_key)
    assert meter is not None and may_read("meter_reading", meter, owner)
    assert not may_read("meter_reading", meter, other)
    trade = Trade(0, 0, "solar-1", "solar-3", "a" * 64, "b" * 64, 1000, 100, 100)
    assert may_read("trade", trade, reader("solar-3", "prosumer"))
    assert not may_read("trade", trade, other)


def test_permits_and_organisations_are_public() -> None:
    assert may_read("permit", {"holder": "x"}, PUBLIC)
    assert may_read("organisation", {}, PUBLIC) and may_read("member", {}, PUBLIC)
    assert not may_read("unknown", {}, reader("customs", "customs"))
    assert may_read("unknown", {}, reader("audit", "auditor"))


@pytest.mark.parametrize(
    ("state_key", "kind"),
    [
        (sk.params_key(), "params"),
        (sk.nonce_key(bytes(32)), "nonce"),
        (sk.org_key("a"), "organisation"),
        (sk.member_key(bytes(32)), "member"),
        (sk.shipment_key("S"), "shipment"),
        (sk.shipment_history_key("S", 3), "shipment_history"),
        (sk.permit_key("P"), "permit"),
        (sk.permit_history_key("P", 0), "permit_history"),
        (sk.energy_account_key("a"), "energy_account"),
        (sk.energy_position_key("a", 900_000), "energy_account"),
        (b"energy/account/a/x/900000", "unknown"),
        (sk.meter_key(bytes(32)), "meter"),
        (sk.meter_reading_key(bytes(32), 900_000), "meter_reading"),
        (sk.order_key("ab"), "energy_order"),
        (sk.market_key(0), "market"),
        (sk.trade_key(0, 1), "trade"),
        (b"shipment/S/x/1", "unknown"),
        (b"\xff", "unknown"),
        (b"org", "unknown"),
    ],
)
def test_key_kind(state_key: bytes, kind: str) -> None:
    assert sk.key_kind(state_key) == kind

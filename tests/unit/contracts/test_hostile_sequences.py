"""Hostile sequences of contract transactions, each refused.

One test per finding of docs/contracts.md (``test_fNN_...``, twelve in all).
"""

from __future__ import annotations

from contracts import market, queries
from contracts import state_keys as sk
from contracts.energy import MAX_AMOUNT
from ledger.encoding import Value, decode, encode

from .harness import (
    INTERVAL,
    Chain,
    as_obj,
    goods_line,
    key,
    make_genesis,
    member_key,
    new_org,
    permit_at,
)
from .test_energy import (
    ACCOUNTS,
    DAY,
    METERS,
    REGULATOR,
    S1,
    S2,
    S3,
    interval,
    order,
    reading,
    with_meters,
)
from .test_shipments import (
    BROKER,
    CARRIER_A,
    CUSTOMS,
    EXPORTER,
    IMPORTER,
    PERMIT_CLERK,
    clearing_refused,
    decide,
    declare_payload,
    declared,
    issue_licence,
)

REVOLVERS: list[Value] = [
    goods_line(hs_code="930200", description="Revolvers", quantity=5, value=900_000)
]
IMPORTER_ADMIN = member_key("importer", "admin")
CUSTOMS_ADMIN = member_key("customs", "admin")


def funded_market(money: int = 100_000) -> Chain:
    """The energy market with its meters, every account credited ``money``."""
    chain = with_meters()
    for org in ACCOUNTS:
        chain.ok(
            REGULATOR, "energy.credit_balance", {"account": org, "amount": money, "reference": "r"}
        )
    return chain


def solar_1_offers(chain: Chain, start: int, wh: int, price_per_kwh: int) -> None:
    """solar-1 reports producing ``wh`` in the interval ``start`` and offers all of it."""
    chain.ok(S1, "energy.submit_reading", reading("solar-1", start, wh))
    chain.ok(S1, "energy.place_order", order(start, "offer", wh, price_per_kwh))


def settle_later(chain: Chain, start: int) -> None:
    chain.ok(REGULATOR, "energy.settle", {"interval_start_ms": start})


# --- energy --------------------------------------------------------------------------------------


def test_f01_backdated_and_implausible_readings_mint_nothing() -> None:
    chain = Chain()
    meter = METERS["solar-1"]
    chain.ok(
        REGULATOR,
        "energy.register_meter",
        {"meter_key": meter.public_key, "owner": "solar-1", "name": "roof"},
    )
    # 1970, before the meter existed, each claiming 10^12 Wh
    for start in (0, 900_000):
        chain.fails("bad_time", S1, "energy.submit_reading", reading("solar-1", start, 10**12))
    # after registration but over the per-meter cap (1 MW x 15 min = 250 kWh)
    fresh = (chain.time_ms // INTERVAL + 1) * INTERVAL  # the first interval after registration
    chain.time_ms = fresh + 2 * INTERVAL
    chain.fails("limit_exceeded", S1, "energy.submit_reading", reading("solar-1", fresh, 250_001))
    chain.ok(S1, "energy.submit_reading", reading("solar-1", fresh, 250_000))
    # an interval older than max_reading_age_ms (7 days) cannot be reported on
    chain.time_ms += 8 * DAY
    chain.fails("bad_time", S1, "energy.submit_reading", reading("solar-1", fresh + INTERVAL, 1000))
    # a commissioning time is itself bounded: not more than max_reading_age_ms back
    chain.fails(
        "bad_time",
        REGULATOR,
        "energy.register_meter",
        {
            "meter_key": key("m-old").public_key,
            "owner": "solar-1",
            "name": "old",
            "active_from_ms": chain.time_ms - 8 * DAY,
        },
    )
    assert as_obj(queries.get_energy_account(chain.state, "solar-1"))["produced_wh"] == 250_000


def test_f02_consumed_or_bought_energy_is_not_sold_again() -> None:
    chain = funded_market()
    x, y = interval(chain, 6), interval(chain, 5)
    solar_1_offers(chain, x, 1000, 100)
    chain.ok(S2, "energy.place_order", order(x, "bid", 1000, 100))
    settle_later(chain, x)
    assert as_obj(queries.get_energy_position(chain.state, "solar-2", x))["bought_wh"] == 1000
    chain.ok(S2, "energy.submit_reading", reading("solar-2", x, 0, 1000))  # solar-2 used it
    # solar-2 cannot sell the bought (and consumed) Wh: not in x (settled), not in y
    chain.fails("wrong_state", S2, "energy.place_order", order(x, "offer", 1000, 100))
    chain.fails("insufficient_balance", S2, "energy.place_order", order(y, "offer", 1000, 100))
    # a prosumer that produced 1000 and consumed 1000 has nothing to sell
    chain.ok(S3, "energy.submit_reading", reading("solar-3", y, 1000, 1000))
    chain.fails("insufficient_balance", S3, "energy.place_order", order(y, "offer", 1000, 100))
    # a reading for a later interval does not back an offer in an earlier one
    later = interval(chain, 3)
    chain.ok(S3, "energy.submit_reading", reading("solar-3", later, 5000, 0))
    chain.fails("insufficient_balance", S3, "energy.place_order", order(y, "offer", 1000, 100))
    # a reading after settlement cannot undo the surplus solar-1 already sold
    second = key("meter/solar-1/b")
    chain.ok(
        REGULATOR,
        "energy.register_meter",
        {
            "meter_key": second.public_key,
            "owner": "solar-1",
            "name": "heat pump",
            "active_from_ms": chain.time_ms - DAY,
        },
    )
    from contracts.energy import sign_reading

    late = {
        "meter_key": second.public_key,
        "interval_start_ms": x,
        "produced_wh": 0,
        "consumed_wh": 1,
        "signature": sign_reading(second, chain.genesis.chain_id, x, 0, 1),
    }
    chain.fails("insufficient_balance", S1, "energy.submit_reading", late)
    pos = as_obj(queries.get_energy_position(chain.state, "solar-1", x))
    assert pos["sold_wh"] == 1000 <= pos["produced_wh"] - pos["consumed_wh"]


def test_f03_no_energy_moves_for_no_money() -> None:
    chain = funded_market()
    start = interval(chain)
    solar_1_offers(chain, start, 3000, 150)
    receipts = chain.block(
        chain.batch([(S2, "energy.place_order", order(start, "bid", 6, 150))] * 20)
    ).receipts
    assert {r.code for r in receipts} == {"bad_payload"}  # 6 Wh x 150/kWh < 1 minor unit
    settle_later(chain, start)
    book = as_obj(queries.get_market(chain.state, start))
    assert book["trades"] == []
    # the auction itself never pays less than the seller's own limit for what it moves
    offers = [market.BookOrder("o", 0, 150, 3000)]
    bids = [market.BookOrder(f"b{i}", i + 1, 150, 6) for i in range(499)]
    result = market.clear(offers, bids)
    assert result.matches == () and result.volume_wh == 0
    mixed = market.clear(
        [market.BookOrder("o", 0, 150, 3000)],
        [market.BookOrder("b", 1, 200, 7), market.BookOrder("c", 2, 150, 2000)],
    )
    for m in mixed.matches:
        assert m.amount * 1000 >= m.quantity_wh * 150 and m.amount >= 1


def test_f04_filling_the_order_book_costs_its_owner() -> None:
    chain = funded_market()
    start = (chain.time_ms // INTERVAL + 4) * INTERVAL  # a future interval
    free = chain.block(
        chain.batch([(S2, "energy.place_order", order(start, "bid", 1, 0))] * 30)
    ).receipts
    assert {r.code for r in free} == {"bad_payload"}  # price 0 / worth nothing: refused
    cheap = chain.block(
        chain.batch([(S2, "energy.place_order", order(start, "bid", 10, 100))] * 30)
    ).receipts
    assert sum(r.ok for r in cheap) == 20  # MAX_ORDERS_PER_ACCOUNT
    assert {r.code for r in cheap if not r.ok} == {"limit_exceeded"}
    account = as_obj(queries.get_energy_account(chain.state, "solar-2"))
    assert account["reserved_balance"] == 20  # each order locked a minor unit
    chain.ok(S3, "energy.place_order", order(start, "bid", 1000, 120))  # an honest order


def test_f05_settlement_respects_the_amount_cap() -> None:
    chain = funded_market()
    start = interval(chain)
    solar_1_offers(chain, start, 5000, 100)
    chain.ok(S2, "energy.place_order", order(start, "bid", 5000, 100))
    # the seller's balance sits just below the cap (as if credited over years)
    account_key = sk.energy_account_key("solar-1")
    record = decode(chain.state.data[account_key])
    assert isinstance(record, dict)
    record["balance"] = MAX_AMOUNT - 100
    chain.state.data[account_key] = encode(record)
    chain.fails("limit_exceeded", REGULATOR, "energy.settle", {"interval_start_ms": start})
    balance = as_obj(queries.get_energy_account(chain.state, "solar-1"))["balance"]
    assert balance == MAX_AMOUNT - 100 <= MAX_AMOUNT
    assert as_obj(queries.get_market(chain.state, start))["status"] == "open"


# --- customs and licences ------------------------------------------------------------------------


def test_f06_renewal_does_not_lift_a_suspension() -> None:
    chain = declared(goods=REVOLVERS)
    issue_licence(chain, IMPORTER, "IL-1", window=(chain.time_ms - 1000, chain.time_ms + 10 * DAY))
    chain.ok(PERMIT_CLERK, "permit.suspend", {"permit_id": "IL-1", "reason": "audit"})
    chain.time_ms += 11 * DAY
    permit = permit_at(chain.state, "IL-1", chain.time_ms + 1000)
    assert permit is not None and permit["effective_status"] == "expired"
    chain.ok(
        PERMIT_CLERK, "permit.renew", {"permit_id": "IL-1", "valid_until": chain.time_ms + DAY}
    )
    permit = permit_at(chain.state, "IL-1", chain.time_ms)
    assert permit is not None and permit["effective_status"] == "suspended"
    clearing_refused(chain, licence_id="IL-1")
    # a revoked licence is not renewable at all
    chain.ok(PERMIT_CLERK, "permit.revoke", {"permit_id": "IL-1", "reason": "fraud"})
    chain.fails(
        "wrong_state",
        PERMIT_CLERK,
        "permit.renew",
        {"permit_id": "IL-1", "valid_until": chain.time_ms + 2 * DAY},
    )


def released_with_licence(revoke_after: str) -> Chain:
    chain = declared(goods=REVOLVERS)
    issue_licence(chain, IMPORTER, "IL-1")
    chain.ok(EXPORTER, "shipment.offer_custody", {"shipment_id": "SHP-1", "to": "carrier-a"})
    chain.ok(CARRIER_A, "shipment.accept_custody", {"shipment_id": "SHP-1"})
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear", licence_id="IL-1"))
    if revoke_after == "release":
        chain.ok(CUSTOMS, "shipment.customs_decision", decide("release"))
    chain.ok(PERMIT_CLERK, "permit.revoke", {"permit_id": "IL-1", "reason": "fraud"})
    return chain


def test_f07_a_licence_revoked_after_clearance_stops_release_and_delivery() -> None:
    chain = released_with_licence(revoke_after="clear")
    chain.fails("licence_required", CUSTOMS, "shipment.customs_decision", decide("release"))
    chain = released_with_licence(revoke_after="release")
    deliver = {"shipment_id": "SHP-1", "place": "KRPUS"}
    chain.fails("licence_required", CARRIER_A, "shipment.deliver", deliver)
    chain.fails("licence_required", IMPORTER, "shipment.deliver", deliver)


def test_f08_the_licence_is_checked_at_the_event_time() -> None:
    chain = declared(goods=REVOLVERS)
    now = chain.time_ms
    issue_licence(chain, IMPORTER, "IL-1", window=(now, now + 365 * DAY))
    r = clearing_refused(chain, licence_id="IL-1", time_ms=now - 10 * DAY)  # backdated
    assert "not valid before" in r.message
    # and an event time cannot lie further back than max_event_age_ms (90 days)
    ancient = decide("hold", time_ms=chain.time_ms - 91 * DAY)
    chain.fails("bad_time", CUSTOMS, "shipment.customs_decision", ancient)
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear", licence_id="IL-1"))


def test_f09_a_shorter_goods_code_does_not_bypass_a_longer_restriction() -> None:
    app: dict[str, Value] = {"restricted_hs_codes": ["93020010"], "energy_interval_ms": INTERVAL}
    chain = declared(Chain(genesis=make_genesis(app)), goods=REVOLVERS)  # declared as 930200
    clearing_refused(chain)
    # a licence for the narrower code does not cover the wider declaration either
    issue_licence(chain, IMPORTER, "IL-N", hs_codes=["93020010"])
    clearing_refused(chain, licence_id="IL-N")
    issue_licence(chain, IMPORTER, "IL-W", hs_codes=["9302"])
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear", licence_id="IL-W"))


def test_f10_an_unchecked_licence_id_is_never_recorded() -> None:
    chain = declared()  # unrestricted batteries
    clearing_refused(chain, licence_id="NO-SUCH-LICENCE")
    issue_licence(chain, IMPORTER, "IL-ARMS", hs_codes=["9302"])  # covers none of the goods
    clearing_refused(chain, licence_id="IL-ARMS")
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear"))
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None and s["licence_id"] is None
    history = as_obj(queries.get_shipment_history(chain.state, "SHP-1"))
    assert all("licence_id" not in h["details"] for h in history)


def test_f11_parties_must_confirm_their_roles() -> None:
    chain = Chain()
    issue_licence(chain, IMPORTER, "IL-1")  # the unwitting importer holds a licence
    chain.ok(BROKER, "shipment.declare", declare_payload(goods=REVOLVERS))
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None and s["unconfirmed"] == ["consignee", "consignor"]
    # the named consignor cannot be made to act as holder, nor used without its consent
    offer = {"shipment_id": "SHP-1", "to": "carrier-a"}
    chain.fails("wrong_state", EXPORTER, "shipment.offer_custody", offer)
    when = s["declared_time_ms"]
    milestone = {"shipment_id": "SHP-1", "event": "gate_in", "place": "CNSHA", "time_ms": when}
    chain.fails("wrong_state", EXPORTER, "shipment.milestone", milestone)
    # the consignee's licence does not count before it confirms
    r = clearing_refused(chain, licence_id="IL-1")
    assert "has not confirmed" in r.message
    # only the named organisations may confirm, once each
    chain.fails("forbidden", CARRIER_A, "shipment.confirm_party", {"shipment_id": "SHP-1"})
    chain.ok(IMPORTER, "shipment.confirm_party", {"shipment_id": "SHP-1"})
    chain.fails("wrong_state", IMPORTER, "shipment.confirm_party", {"shipment_id": "SHP-1"})
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear", licence_id="IL-1"))
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("release"))
    # delivery needs both parties: the consignor never confirmed
    deliver = {"shipment_id": "SHP-1", "place": "KRPUS"}
    chain.fails("wrong_state", IMPORTER, "shipment.deliver", deliver)
    chain.ok(EXPORTER, "shipment.confirm_party", {"shipment_id": "SHP-1"})
    chain.ok(IMPORTER, "shipment.deliver", deliver)


# --- identity ------------------------------------------------------------------------------------


def test_f12_one_key_space_for_members_and_meters() -> None:
    chain = with_meters()
    meter = METERS["solar-1"]
    member = {"public_key": meter.public_key, "name": "sneaky", "roles": ["trader"]}
    chain.fails("duplicate", IMPORTER_ADMIN, "identity.register_member", member)
    org = new_org("shellco", "Shell Co", "trader", meter, "boss", ["admin"])
    chain.fails("duplicate", CUSTOMS_ADMIN, "identity.register_org", org)
    apply = {"id": "P-X", "type": "import_licence", "address": "a", "description": "d"}
    chain.fails("unknown_sender", meter, "permit.apply", apply)
    # and the other path: a member key cannot become a meter
    chain.fails(
        "duplicate",
        REGULATOR,
        "energy.register_meter",
        {"meter_key": S3.public_key, "owner": "solar-3", "name": "m"},
    )

"""The demo scenario runs through execute_block with every receipt OK, deterministically."""

from __future__ import annotations

from collections import Counter
from functools import cache

from contracts import queries
from devnet.demo import (
    DEFAULT_SEED,
    DEFAULT_START_MS,
    demo_genesis,
    demo_organisations,
    demo_phases,
    demo_summary,
    energy_intervals,
)
from ledger.block import Receipt
from ledger.tx import Transaction

from .harness import Chain, as_obj, permit_at

CHAIN_ID = "cityledger-demo"


@cache
def loaded(seed: int = DEFAULT_SEED) -> tuple[Chain, tuple[Receipt, ...]]:
    """Run every phase as one block, one second apart, starting at the demo's start time."""
    chain = Chain(genesis=demo_genesis(CHAIN_ID))
    chain.time_ms = DEFAULT_START_MS
    receipts: list[Receipt] = []
    for phase in demo_phases(CHAIN_ID, seed, DEFAULT_START_MS):
        receipts += chain.block(phase).receipts
    return chain, tuple(receipts)


def test_every_receipt_is_ok() -> None:
    _chain, receipts = loaded()
    failures = [(r.index, r.code, r.message) for r in receipts if not r.ok]
    assert failures == []
    assert len(receipts) > 1000


def test_phase_transactions_are_independent_across_senders() -> None:
    """Each phase still succeeds when its senders' transaction streams are interleaved
    differently (reversed sender order, nonce order kept)."""
    chain = Chain(genesis=demo_genesis(CHAIN_ID))
    chain.time_ms = DEFAULT_START_MS
    for phase in demo_phases(CHAIN_ID, DEFAULT_SEED, DEFAULT_START_MS):
        by_sender: dict[bytes, list[Transaction]] = {}
        for tx in phase:
            by_sender.setdefault(tx.sender, []).append(tx)
        reordered = [tx for sender in sorted(by_sender, reverse=True) for tx in by_sender[sender]]
        receipts = chain.block(reordered).receipts
        assert [r.message for r in receipts if not r.ok] == []


def test_expected_counts() -> None:
    chain, receipts = loaded()
    kinds = Counter(e.type for r in receipts for e in r.events)
    assert kinds["shipment.declared"] == 57
    assert kinds["identity.org_registered"] == 1
    assert kinds["identity.member_revoked"] == 1
    assert kinds["energy.settled"] == 3
    assert kinds["energy.order_cancelled"] == 1
    assert kinds["permit.applied"] == 30
    stages: Counter[str] = Counter()
    for i in range(1, 58):
        s = as_obj(queries.get_shipment(chain.state, f"SHP-{i:04d}"))
        assert s is not None
        stages[s["stage"]] += 1
        stages[s["customs_status"]] += 1
    assert stages["delivered"] >= 40 and stages["in_transit"] >= 4
    assert stages["held"] == 1 and stages["seized"] == 1 and stages["pending"] >= 2
    statuses = {
        permit_at(chain.state, pid, chain.time_ms)["effective_status"]  # type: ignore[index]
        for pid in [
            "BSN-BLD-0001",
            "BSN-BLD-0002",
            "BSN-BUS-0003",
            "BSN-EVT-0004",
            "BSN-BUS-0005",
            "BSN-BLD-0006",
            "BSN-BUS-0007",
            "BSN-BLD-0008",
        ]
    }
    assert statuses == {
        "issued",
        "in_review",
        "approved",
        "denied",
        "suspended",
        "revoked",
        "expired",
        "applied",
    }


def test_summary_ids_are_worth_querying() -> None:
    chain, _ = loaded()
    summary = demo_summary(start_time_ms=DEFAULT_START_MS)
    history = as_obj(
        queries.get_shipment_history(chain.state, str(summary["long_history_shipment"]))
    )
    assert len(history) >= 18
    events = [
        h["details"].get("milestone") or h["details"].get("decision") or h["event"] for h in history
    ]
    assert events[:1] == ["declared"] and events[-1] == "delivered"
    for step in ("hold", "inspect", "clear", "release", "custody_transferred", "departed"):
        assert step in events
    assert {h["place"] for h in history} >= {"CNSHA", "KRPUS"}
    assert queries.find_shipments_by_container(chain.index, str(summary["container"])) == [
        summary["long_history_shipment"]
    ]
    reuse = summary["reused_container_shipments"]
    assert isinstance(reuse, list)
    first = as_obj(queries.get_shipment(chain.state, reuse[0]))
    assert first is not None
    assert queries.find_shipments_by_container(chain.index, first["containers"][0]) == reuse
    held = as_obj(queries.get_shipment(chain.state, str(summary["held_shipment"])))
    assert held is not None and held["customs_status"] == "held"
    assert summary["held_shipment"] in queries.find_shipments_by_status(chain.index, "held")
    restricted = as_obj(queries.get_shipment(chain.state, str(summary["restricted_shipment"])))
    assert restricted is not None and restricted["licence_id"] == summary["import_licence"]
    assert queries.permit_valid_at(chain.state, str(summary["permit"]), chain.time_ms)[0]
    assert not queries.permit_valid_at(chain.state, str(summary["expired_permit"]), chain.time_ms)[
        0
    ]
    account = as_obj(queries.get_energy_account(chain.state, str(summary["energy_account"])))
    assert account["balance"] > 20_000  # sold energy
    market = as_obj(queries.get_market(chain.state, int(summary["settled_interval_start_ms"])))
    assert market["status"] == "settled" and market["trades"]
    assert as_obj(queries.get_market(chain.state, int(summary["open_interval_start_ms"])))[
        "status"
    ] == ("open")
    trades = as_obj(queries.trades_by_account(chain.state, chain.index, "sejong-solar-coop"))
    assert trades and all("sejong-solar-coop" in (t["seller"], t["buyer"]) for t in trades)
    assert len(queries.find_shipments_by_party(chain.index, "hanbit-electronics", limit=500)) > 10


def test_organisations_cover_both_cities_and_every_agency_role() -> None:
    orgs = demo_organisations()
    cities = {o.city for o in orgs if o.kind == "agency"}
    assert {"Busan", "Sejong"} <= cities
    for city in ("Busan", "Sejong"):
        roles = {
            r
            for o in orgs
            if o.city == city and o.kind == "agency"
            for m in o.members
            for r in m.roles
        }
        assert {"customs", "port", "permit_office", "energy_regulator", "auditor"} <= roles
    assert {o.kind for o in orgs} == {"agency", "carrier", "trader", "customs_broker", "prosumer"}


def test_energy_intervals_are_closed_before_the_start() -> None:
    intervals = energy_intervals(DEFAULT_START_MS)
    for starts in intervals.values():
        assert all(s + 900_000 <= DEFAULT_START_MS - 86_400_000 for s in starts)


def test_demo_is_deterministic() -> None:
    """Same seed: identical transactions; same blocks on two fresh states: identical outcomes."""
    a = demo_phases(CHAIN_ID, 7, DEFAULT_START_MS)
    b = demo_phases(CHAIN_ID, 7, DEFAULT_START_MS)
    assert [[t.encode() for t in p] for p in a] == [[t.encode() for t in p] for p in b]
    assert a != demo_phases(CHAIN_ID, 8, DEFAULT_START_MS)

    def run() -> list[tuple[object, ...]]:
        chain = Chain(genesis=demo_genesis(CHAIN_ID))
        chain.time_ms = DEFAULT_START_MS
        out: list[tuple[object, ...]] = []
        for phase in a:
            o = chain.block(phase)
            out.append(
                (
                    tuple(r.encode() for r in o.receipts),
                    tuple(o.state_changes.items()),
                    tuple(o.index_changes.items()),
                )
            )
        return out

    first = run()
    assert first == run()
    _chain, receipts = loaded(7)
    assert all(r.ok for r in receipts)

"""Property tests of custody, party confirmation, customs transitions and the licence
gates at clear, release and deliver against an independent model of docs/contracts.md;
every block checked for determinism and failure isolation (:mod:`.properties_kit`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from contracts import queries
from ledger.crypto import PrivateKey
from ledger.encoding import Value

from .harness import INTERVAL, Chain, as_obj, goods_line, make_genesis, member_key
from .properties_kit import DAY, examples, send

# --- shipments: custody, parties, customs and licence gates ------------------------------------

SHIP_KEYS = {
    "broker": member_key("broker", "clerk"),
    "exporter": member_key("exporter", "clerk"),
    "importer": member_key("importer", "clerk"),
    "carrier-a": member_key("carrier-a", "ops"),
    "carrier-b": member_key("carrier-b", "ops"),
    "port": member_key("port", "officer"),
}
CUSTOMS_KEY = member_key("customs", "officer")
CLERK_KEY = member_key("permits", "clerk")
# from the customs transitions table of docs/contracts.md
CUSTOMS_TABLE: dict[str, tuple[set[str], str]] = {
    "hold": ({"pending", "inspection", "cleared", "released"}, "held"),
    "inspect": ({"pending", "held"}, "inspection"),
    "clear": ({"pending", "held", "inspection"}, "cleared"),
    "release": ({"cleared"}, "released"),
    "seize": ({"pending", "held", "inspection", "cleared", "released"}, "seized"),
}
GOODS = {
    "batteries": ("850760", False),
    "revolvers": ("930200", True),  # under the restricted heading 9302
    "rifles": ("930300", True),  # wider than the restricted subdivision 93030010
}
SHIP_APP: dict[str, Value] = {
    "restricted_hs_codes": ["360100", "9302", "93030010"],
    "energy_interval_ms": INTERVAL,
}


@dataclass
class ShipmentModel:
    declarant: str
    restricted: bool
    unconfirmed: set[str]
    holder: str = "exporter"
    offer_to: str | None = None
    stage: str = "declared"
    customs: str = "pending"
    licence: str | None = None


@dataclass
class LicenceModel:
    """IL-1 of the importer: issued for [valid_from, valid_until); may be suspended/revoked."""

    valid_from: int
    valid_until: int
    status: str = "issued"

    def valid_at(self, t: int) -> bool:
        return self.status == "issued" and self.valid_from <= t < self.valid_until


ship_op = st.one_of(
    st.tuples(st.just("confirm"), st.sampled_from(["exporter", "importer", "carrier-a"])),
    st.tuples(
        st.just("offer"),
        st.sampled_from(["exporter", "carrier-a", "carrier-b", "importer"]),
        st.sampled_from(["carrier-a", "carrier-b", "importer", "exporter"]),
    ),
    st.tuples(st.just("accept"), st.sampled_from(["carrier-a", "carrier-b", "importer"])),
    st.tuples(st.just("milestone"), st.sampled_from(["exporter", "carrier-a", "port"])),
    st.tuples(
        st.just("customs"),
        st.sampled_from(sorted(CUSTOMS_TABLE)),
        st.sampled_from([None, "IL-1", "NOPE"]),
        st.integers(-20, 0),  # event time, days before the block
    ),
    st.tuples(st.just("deliver"), st.sampled_from(["carrier-a", "carrier-b", "importer"])),
    st.tuples(st.just("licence"), st.sampled_from(["suspend", "reinstate", "revoke"])),
    st.tuples(st.just("wait"), st.integers(1, 6)),
)


def expect_shipment(
    m: ShipmentModel, lic: LicenceModel, op: tuple[Any, ...], now: int
) -> tuple[set[str], Callable[[], None]]:
    """The refusal codes the documented rules give for ``op`` (empty: it succeeds), and what
    it changes when it succeeds."""
    kind = op[0]
    codes: set[str] = set()
    closed = m.customs == "seized" or m.stage == "delivered"

    def nothing() -> None:
        return None

    def gate(t: int, licence: str | None) -> None:
        """The licence gate: restricted goods need IL-1 (the confirmed consignee's, covering
        chapter 93) valid at ``t``; a cited licence is always checked and must cover goods."""
        if licence is None:
            if m.restricted:
                codes.add("licence_required")
            return
        if licence != "IL-1" or "consignee" in m.unconfirmed or not lic.valid_at(t):
            codes.add("licence_required")
        elif not m.restricted:
            codes.add("licence_required")  # IL-1 covers chapter 93 only: none of the goods

    if kind == "confirm":
        org = op[1]
        roles = {r for r, o in (("consignor", "exporter"), ("consignee", "importer")) if o == org}
        if not roles:
            return {"forbidden"}, nothing
        if closed:
            codes.add("wrong_state")
        if not roles & m.unconfirmed:
            codes.add("wrong_state")
        return codes, lambda: m.unconfirmed.difference_update(roles)
    if kind == "offer":
        _, by, to = op
        if by != m.holder:
            codes.add("forbidden")
        if closed or m.customs == "held" or "consignor" in m.unconfirmed:
            codes.add("wrong_state")
        if to == m.holder:
            codes.add("bad_payload")

        def offered() -> None:
            m.offer_to = to

        return codes, offered
    if kind == "accept":
        by = op[1]
        if m.offer_to is None:
            codes.add("wrong_state")
        elif by != m.offer_to:
            codes.add("forbidden")
        if closed or m.customs == "held":
            codes.add("wrong_state")

        def accepted() -> None:
            m.holder, m.offer_to = by, None
            if m.stage == "declared":
                m.stage = "in_transit"

        return codes, accepted
    if kind == "milestone":
        by = op[1]
        if by != m.holder and by != "port":
            codes.add("forbidden")
        if closed or (by != "port" and "consignor" in m.unconfirmed):
            codes.add("wrong_state")

        def moved() -> None:
            if m.stage == "declared":
                m.stage = "in_transit"

        return codes, moved
    if kind == "customs":
        _, decision, licence, days = op
        t = now + days * DAY
        sources, target = CUSTOMS_TABLE[decision]
        if decision != "seize" and closed:
            codes.add("wrong_state")
        if m.customs not in sources:
            codes.add("wrong_state")
        if licence is not None and decision != "clear":
            return {"bad_payload"}, nothing
        if decision == "clear":
            gate(t, licence)
        elif decision == "release" and m.restricted:
            gate(t, m.licence)

        def decided() -> None:
            m.customs = target
            if decision == "clear":
                m.licence = licence

        return codes, decided
    if kind == "deliver":
        by = op[1]
        if by not in (m.holder, "importer"):
            codes.add("forbidden")
        if closed or m.customs != "released" or m.unconfirmed:
            codes.add("wrong_state")
        if m.restricted:
            gate(now, m.licence)

        def delivered() -> None:
            m.holder, m.offer_to, m.stage = "importer", None, "delivered"

        return codes, delivered
    raise AssertionError(kind)


def likely_ops(m: ShipmentModel) -> list[tuple[Any, ...]]:
    """The documented next steps of an honest journey from the model's state."""
    out: list[tuple[Any, ...]] = []
    parties = {"consignor": "exporter", "consignee": "importer"}
    out += [("confirm", parties[role]) for role in sorted(m.unconfirmed)]
    if m.offer_to is not None:
        out.append(("accept", m.offer_to))
    if m.holder == "exporter":
        out.append(("offer", "exporter", "carrier-a"))
    if m.holder.startswith("carrier"):
        out.append(("milestone", m.holder))
    licence = "IL-1" if m.restricted else None
    following = {
        "pending": ("clear", licence),
        "held": ("inspect", None),
        "inspection": ("clear", licence),
        "cleared": ("release", None),
    }
    if m.customs in following:
        decision, cited = following[m.customs]
        out.append(("customs", decision, cited, 0))
    if m.customs == "released" and m.stage != "delivered":
        out.append(("deliver", m.holder if m.holder != "exporter" else "importer"))
    return out


@examples(80)
@given(st.sampled_from(["broker", "exporter"]), st.sampled_from(sorted(GOODS)), st.data())
def test_custody_parties_customs_and_licence_gates_match_the_model(
    declarant: str, goods: str, data: st.DataObject
) -> None:
    chain = Chain(genesis=make_genesis(SHIP_APP))
    lic = LicenceModel(chain.time_ms - 3 * DAY, chain.time_ms + 8 * DAY)
    chain.ok(
        SHIP_KEYS["importer"],
        "permit.apply",
        {
            "id": "IL-1",
            "type": "import_licence",
            "address": "1 Pier",
            "description": "arms",
            "hs_codes": ["93"],
        },
    )
    chain.ok(CLERK_KEY, "permit.review", {"permit_id": "IL-1"})
    chain.ok(CLERK_KEY, "permit.approve", {"permit_id": "IL-1"})
    chain.ok(
        CLERK_KEY,
        "permit.issue",
        {"permit_id": "IL-1", "valid_from": lic.valid_from, "valid_until": lic.valid_until},
    )
    hs, restricted = GOODS[goods]
    line = goods_line(hs_code=hs, description=goods)
    chain.ok(
        SHIP_KEYS[declarant],
        "shipment.declare",
        {
            "id": "S",
            "consignor": "exporter",
            "consignee": "importer",
            "declarant": declarant,
            "origin": "CNSHA",
            "destination": "KRPUS",
            "goods": [line],
            "containers": [],
        },
    )
    unconfirmed = {"consignee", "consignor"} - ({"consignor"} if declarant == "exporter" else set())
    m = ShipmentModel(declarant, restricted, unconfirmed)
    for _ in range(data.draw(st.integers(0, 18))):
        likely = likely_ops(m)
        guided = likely and data.draw(st.integers(0, 2)) > 0
        op = data.draw(st.sampled_from(likely) if guided else ship_op)
        now = chain.time_ms + 1000
        if op[0] == "wait":
            chain.time_ms += op[1] * DAY
            continue
        if op[0] == "licence":
            action = op[1]
            body: dict[str, Value] = {"permit_id": "IL-1", "reason": "r"}
            r = send(chain, CLERK_KEY, f"permit.{action}", body, now)
            reads = "expired" if lic.status != "revoked" and now >= lic.valid_until else lic.status
            allowed = {"suspend": {"issued"}, "reinstate": {"suspended"}}.get(
                action, {"issued", "suspended"}
            )
            assert r.ok == (reads in allowed), (action, reads, r.code)
            if r.ok:
                lic.status = {"suspend": "suspended", "reinstate": "issued"}.get(action, "revoked")
            continue
        expected, effect = expect_shipment(m, lic, op, now)
        signer, kind, body = shipment_tx(op, now)
        r = send(chain, signer, kind, body, now)
        if expected:
            assert r.code in expected, (op, r.code, r.message, expected)
        else:
            assert r.ok, (op, r.code, r.message)
            effect()
            event(f"shipment: {op[0]} {op[1] if op[0] == 'customs' else ''} succeeded")
        s = as_obj(queries.get_shipment(chain.state, "S"))
        assert s is not None
        observed = (s["holder"], s["stage"], s["customs_status"], set(s["unconfirmed"]))
        assert observed == (m.holder, m.stage, m.customs, m.unconfirmed), op
        offer = s["custody_offer"]
        assert (offer["to"] if offer else None) == m.offer_to
        assert s["licence_id"] == m.licence
        # custody only ever moved by acceptance or delivery, to organisations that agreed
        assert set(s["holders"]) <= {"exporter", "carrier-a", "carrier-b", "importer"}


def shipment_tx(op: tuple[Any, ...], now: int) -> tuple[PrivateKey, str, dict[str, Value]]:
    kind = op[0]
    ref: dict[str, Value] = {"shipment_id": "S"}
    if kind == "confirm":
        return SHIP_KEYS[op[1]], "shipment.confirm_party", ref
    if kind == "offer":
        return SHIP_KEYS[op[1]], "shipment.offer_custody", ref | {"to": op[2]}
    if kind == "accept":
        return SHIP_KEYS[op[1]], "shipment.accept_custody", ref
    if kind == "milestone":
        body = ref | {"event": "gate_in", "place": "CNSHA", "time_ms": now}
        return SHIP_KEYS[op[1]], "shipment.milestone", body
    if kind == "customs":
        _, decision, licence, days = op
        body = ref | {"decision": decision, "reason": "r", "time_ms": now + days * DAY}
        if licence is not None:
            body["licence_id"] = licence
        return CUSTOMS_KEY, "shipment.customs_decision", body
    return SHIP_KEYS[op[1]], "shipment.deliver", ref | {"place": "KRPUS"}

"""Property tests of the permit state machine against an independent model of the
documented table; every block checked for determinism and failure isolation
(:mod:`.properties_kit`)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import event, given
from hypothesis import strategies as st

from contracts import queries
from ledger.encoding import Value

from .harness import Chain, member_key, permit_at
from .properties_kit import DAY, examples, send

# --- permits: an independent model of docs/contracts.md ---------------------------------------

# kind -> (sender, statuses it may start from as they read at the block time, new status or
# None for unchanged), transcribed from the "Transitions" table of docs/contracts.md.
PERMIT_TABLE: dict[str, tuple[str, set[str], str | None]] = {
    "permit.review": ("clerk", {"applied"}, "in_review"),
    "permit.approve": ("clerk", {"in_review"}, "approved"),
    "permit.deny": ("clerk", {"applied", "in_review"}, "denied"),
    "permit.issue": ("clerk", {"approved"}, "issued"),
    "permit.inspect": ("inspector", {"issued", "suspended"}, None),
    "permit.renew": ("clerk", {"issued", "suspended", "expired"}, None),
    "permit.suspend": ("clerk", {"issued"}, "suspended"),
    "permit.reinstate": ("clerk", {"suspended"}, "issued"),
    "permit.revoke": ("clerk", {"approved", "issued", "suspended"}, "revoked"),
}
PERMIT_SENDERS = {
    "clerk": member_key("permits", "clerk"),
    "inspector": member_key("permits", "insp"),
    "trader": member_key("exporter", "clerk"),
}


@dataclass
class PermitModel:
    status: str = "applied"
    valid_from: int = 0
    valid_until: int = 0

    def reads(self, t: int) -> str:
        """The docs: issued and suspended read as expired once t reaches valid_until."""
        if self.status in ("issued", "suspended") and t >= self.valid_until:
            return "expired"
        return self.status

    def valid_at(self, t: int) -> bool:
        return self.reads(t) == "issued" and self.valid_from <= t < self.valid_until


# the documented way forward from each status (as it reads), to reach every status often
FORWARD: dict[str, list[str]] = {
    "applied": ["permit.review"],
    "in_review": ["permit.approve"],
    "approved": ["permit.issue", "permit.revoke"],
    "issued": ["permit.suspend", "permit.renew", "permit.inspect", "permit.revoke"],
    "suspended": ["permit.reinstate", "permit.renew", "permit.inspect", "permit.revoke"],
    "expired": ["permit.renew", "permit.suspend", "permit.reinstate"],
}


@examples(80)
@given(st.data())
def test_permit_state_machine_matches_the_documented_table(data: st.DataObject) -> None:
    chain = Chain()
    chain.ok(
        PERMIT_SENDERS["trader"],
        "permit.apply",
        {"id": "BP-1", "type": "building", "address": "1 Main St", "description": "d"},
    )
    model = PermitModel()
    for _ in range(data.draw(st.integers(0, 14))):
        now = chain.time_ms + data.draw(st.integers(0, 6)) * DAY + 1000
        forward = FORWARD.get(model.reads(now), [])
        if forward and data.draw(st.booleans()):
            kind = data.draw(st.sampled_from(forward))
        else:
            kind = data.draw(st.sampled_from(sorted(PERMIT_TABLE)))
        who = data.draw(st.sampled_from(["right", "right", "right", "trader"]))
        end_days = data.draw(st.integers(-3, 8))
        role, sources, target = PERMIT_TABLE[kind]
        sender = PERMIT_SENDERS[role if who == "right" else "trader"]
        body: dict[str, Value] = {"permit_id": "BP-1"}
        end = now + end_days * DAY
        if kind == "permit.issue":
            body |= {"valid_from": now - DAY, "valid_until": max(end, now - DAY + 1)}
        elif kind == "permit.renew":
            body["valid_until"] = end
        elif kind == "permit.inspect":
            body["result"] = "pass"
        elif kind not in ("permit.review", "permit.approve"):
            body["reason"] = "because"
        receipt = send(chain, sender, kind, body, now)
        current = model.reads(now)
        if who != "right":
            assert receipt.code == "forbidden_role"
        elif current not in sources:
            assert receipt.code == "wrong_state", (kind, current, receipt.code)
        elif kind == "permit.renew" and end <= max(model.valid_until, now):
            assert receipt.code == "bad_payload"  # must extend beyond both
        else:
            assert receipt.ok, (kind, current, receipt.message)
            if kind == "permit.issue":
                model.valid_from, model.valid_until = now - DAY, max(end, now - DAY + 1)
            if kind == "permit.renew":
                model.valid_until = end
            model.status = target or model.status
        permit = permit_at(chain.state, "BP-1", now)
        assert permit is not None
        assert (permit["status"], permit["effective_status"]) == (model.status, model.reads(now))
        assert queries.permit_valid_at(chain.state, "BP-1", now)[0] == model.valid_at(now)
        event(f"permit: reached {model.reads(now)}")

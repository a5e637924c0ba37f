"""Permits: apply, review, approve/deny, issue, inspect, renew, suspend, reinstate, revoke."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import queries
from contracts.permits import STATUSES, TRANSITIONS, effective_status
from ledger.crypto import PrivateKey
from ledger.encoding import Value

from .harness import Chain, as_obj, event_types, member_key, permit_at

APPLICANT = member_key("exporter", "clerk")
CLERK = member_key("permits", "clerk")
INSPECTOR = member_key("permits", "insp")
CARRIER = member_key("carrier-a", "ops")
DAY = 86_400_000


def apply_payload(**over: Value) -> dict[str, Value]:
    payload: dict[str, Value] = {
        "id": "BP-1",
        "type": "building",
        "address": "77  Jungang-daero, Busan",
        "description": "Two-storey warehouse extension",
    }
    payload.update(over)
    return payload


def applied(chain: Chain | None = None, **over: Value) -> Chain:
    chain = chain or Chain()
    chain.ok(APPLICANT, "permit.apply", apply_payload(**over))
    return chain


def issued(chain: Chain | None = None, days: int = 365) -> Chain:
    chain = applied(chain)
    chain.ok(CLERK, "permit.review", {"permit_id": "BP-1"})
    chain.ok(CLERK, "permit.approve", {"permit_id": "BP-1", "note": "meets code"})
    chain.ok(
        CLERK,
        "permit.issue",
        {
            "permit_id": "BP-1",
            "valid_from": chain.time_ms,
            "valid_until": chain.time_ms + days * DAY,
            "conditions": "no work on Sundays",
        },
    )
    return chain


def test_apply() -> None:
    chain = Chain()
    r = chain.ok(APPLICANT, "permit.apply", apply_payload())
    assert event_types(r) == ["permit.applied"]
    assert r.events[0].attrs == {
        "permit": "BP-1",
        "type": "building",
        "holder": "exporter",
        "status": "applied",
    }
    p = permit_at(chain.state, "BP-1", chain.time_ms)
    assert p is not None and p["holder"] == "exporter" and p["status"] == "applied"
    assert p["blds_status"] == "Application Accepted"
    assert queries.permits_by_holder(chain.index, "exporter") == ["BP-1"]
    assert queries.permits_by_address(chain.index, "77 jungang-daero, busan") == ["BP-1"]
    assert queries.permits_by_address(chain.index, "77 JUNGANG", prefix=True) == ["BP-1"]
    assert queries.permits_by_address(chain.index, "77 Jungang") == []


@pytest.mark.parametrize(
    "over",
    [
        {"type": "fishing"},
        {"address": "   "},
        {"id": "a/b"},
        {"hs_codes": ["93"]},
        {"type": "import_licence", "hs_codes": ["9"]},
        {"description": ""},
        {"extra": 1},
    ],
)
def test_apply_bad_payload(over: dict[str, Value]) -> None:
    Chain().fails("bad_payload", APPLICANT, "permit.apply", apply_payload(**over))


def test_apply_rejections() -> None:
    chain = applied()
    chain.fails("duplicate", CARRIER, "permit.apply", apply_payload())
    chain.fails("forbidden_role", CLERK, "permit.apply", apply_payload(id="BP-2"))


def test_issue_and_validity() -> None:
    chain = issued(days=10)
    start = chain.time_ms - 1000  # issued in the previous block
    p = permit_at(chain.state, "BP-1", chain.time_ms)
    assert p is not None and p["status"] == "issued" and p["conditions"] == "no work on Sundays"
    assert p["blds_status"] == "Permit Issued"
    assert queries.permit_valid_at(chain.state, "BP-1", start) == (
        True,
        f"issued, valid from {start} until {start + 10 * DAY}",
    )
    assert queries.permit_valid_at(chain.state, "BP-1", start - 1)[0] is False
    ok, reason = queries.permit_valid_at(chain.state, "BP-1", start + 10 * DAY)
    assert not ok and reason.startswith("expired")
    assert permit_at(chain.state, "BP-1", start + 10 * DAY)["effective_status"] == (  # type: ignore[index]
        "expired"
    )
    assert queries.permit_valid_at(chain.state, "NOPE", start) == (
        False,
        "permit 'NOPE' does not exist",
    )
    history = as_obj(queries.get_permit_history(chain.state, "BP-1"))
    assert [h["action"] for h in history] == ["applied", "reviewed", "approved", "issued"]


def test_inspect_renew_suspend_reinstate_revoke() -> None:
    chain = issued(days=10)
    r = chain.ok(
        INSPECTOR,
        "permit.inspect",
        {"permit_id": "BP-1", "result": "fail", "notes": "missing fire exit"},
    )
    assert event_types(r) == ["permit.inspected"]
    p = as_obj(queries.get_permit(chain.state, "BP-1"))
    assert p is not None and p["inspections"][0]["result"] == "fail"
    assert p["inspections"][0]["by"] == "permits"
    old_until = p["valid_until"]
    chain.ok(CLERK, "permit.renew", {"permit_id": "BP-1", "valid_until": old_until + DAY})
    chain.ok(CLERK, "permit.suspend", {"permit_id": "BP-1", "reason": "failed inspection"})
    assert not queries.permit_valid_at(chain.state, "BP-1", chain.time_ms)[0]
    chain.ok(INSPECTOR, "permit.inspect", {"permit_id": "BP-1", "result": "pass"})
    chain.ok(CLERK, "permit.reinstate", {"permit_id": "BP-1", "reason": "fixed"})
    assert queries.permit_valid_at(chain.state, "BP-1", chain.time_ms)[0]
    chain.ok(CLERK, "permit.revoke", {"permit_id": "BP-1", "reason": "fraud"})
    p = permit_at(chain.state, "BP-1", chain.time_ms)
    assert p is not None and p["status"] == "revoked" and p["blds_status"] == "Permit Cancelled"
    assert p["renewals"] == 1 and p["reason"] == "fraud"


def test_renew_an_expired_permit() -> None:
    chain = issued(days=1)
    chain.block([], time_ms=chain.time_ms + 2 * DAY)
    assert permit_at(chain.state, "BP-1", chain.time_ms)["effective_status"] == (  # type: ignore[index]
        "expired"
    )
    chain.fails("wrong_state", CLERK, "permit.suspend", {"permit_id": "BP-1", "reason": "x"})
    chain.fails(
        "bad_payload",
        CLERK,
        "permit.renew",
        {"permit_id": "BP-1", "valid_until": chain.time_ms - 1},
    )
    chain.ok(CLERK, "permit.renew", {"permit_id": "BP-1", "valid_until": chain.time_ms + DAY})
    assert queries.permit_valid_at(chain.state, "BP-1", chain.time_ms + 1000)[0]


def test_transition_rejections() -> None:
    chain = applied()
    chain.fails("wrong_state", CLERK, "permit.approve", {"permit_id": "BP-1"})
    chain.fails(
        "wrong_state",
        CLERK,
        "permit.issue",
        {"permit_id": "BP-1", "valid_from": 0, "valid_until": 1},
    )
    chain.fails("wrong_state", INSPECTOR, "permit.inspect", {"permit_id": "BP-1", "result": "pass"})
    chain.fails("forbidden_role", APPLICANT, "permit.review", {"permit_id": "BP-1"})
    chain.fails("forbidden_role", CLERK, "permit.inspect", {"permit_id": "BP-1", "result": "pass"})
    chain.fails("forbidden_role", INSPECTOR, "permit.review", {"permit_id": "BP-1"})
    chain.fails("not_found", CLERK, "permit.review", {"permit_id": "NOPE"})
    chain.fails("bad_payload", CLERK, "permit.deny", {"permit_id": "BP-1"})  # reason required
    chain.fails("bad_payload", CLERK, "permit.review", {"permit_id": "BP-1", "reason": "x"})
    chain.ok(CLERK, "permit.review", {"permit_id": "BP-1"})
    chain.ok(CLERK, "permit.approve", {"permit_id": "BP-1"})
    chain.fails(
        "bad_payload",
        CLERK,
        "permit.issue",
        {"permit_id": "BP-1", "valid_from": 10, "valid_until": 10},
    )
    chain.fails(
        "bad_payload",
        CLERK,
        "permit.issue",
        {"permit_id": "BP-1", "valid_from": 0, "valid_until": 60 * 365 * DAY},
    )
    chain.ok(CLERK, "permit.revoke", {"permit_id": "BP-1", "reason": "withdrawn"})
    chain.fails("wrong_state", CLERK, "permit.reinstate", {"permit_id": "BP-1", "reason": "x"})
    chain.fails("wrong_state", CLERK, "permit.renew", {"permit_id": "BP-1", "valid_until": 10**14})


def test_deny() -> None:
    chain = applied()
    r = chain.ok(CLERK, "permit.deny", {"permit_id": "BP-1", "reason": "zoning"})
    assert event_types(r) == ["permit.denied"]
    p = as_obj(queries.get_permit(chain.state, "BP-1"))
    assert p is not None and p["status"] == "denied" and p["reason"] == "zoning"
    chain.fails("wrong_state", CLERK, "permit.review", {"permit_id": "BP-1"})


def test_inspection_in_the_future_is_refused() -> None:
    chain = issued()
    chain.fails(
        "bad_time",
        INSPECTOR,
        "permit.inspect",
        {"permit_id": "BP-1", "result": "pass", "time_ms": chain.time_ms + DAY},
    )


# --- property: the transitions table is the whole truth -----------------------------------------

ACTIONS = sorted(TRANSITIONS)
ACTORS: dict[str, PrivateKey] = {k: INSPECTOR if k == "permit.inspect" else CLERK for k in ACTIONS}


def payload_for(kind: str, now: int) -> dict[str, Value]:
    base: dict[str, Value] = {"permit_id": "BP-1"}
    if kind == "permit.issue":
        return base | {"valid_from": now - DAY, "valid_until": now + 3 * DAY}
    if kind == "permit.renew":
        return base | {"valid_until": now + 5 * DAY}
    if kind == "permit.inspect":
        return base | {"result": "pass"}
    if kind in ("permit.review", "permit.approve"):
        return base
    return base | {"reason": "because"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 3)), max_size=14))
def test_random_action_sequences_follow_the_table(steps: list[tuple[str, int]]) -> None:
    chain = applied()
    model = "applied"
    valid_until = 0
    for kind, days_later in steps:
        now = chain.time_ms + days_later * DAY + 1000
        current = "expired" if model in ("issued", "suspended") and now >= valid_until else model
        transition = TRANSITIONS[kind]
        payload = payload_for(kind, now)
        receipt = chain.send(ACTORS[kind], kind, payload, time_ms=now)
        if current in transition.from_statuses:
            assert receipt.ok, (kind, current, receipt.message)
            model = transition.to or model
            if kind in ("permit.issue", "permit.renew"):
                valid_until = int(payload["valid_until"])
        else:
            assert receipt.code == "wrong_state", (kind, current, receipt.code)
        permit = queries.get_permit(chain.state, "BP-1")
        assert permit is not None and permit.status == model
        status = effective_status(permit, chain.time_ms)
        assert status in STATUSES
        valid, _ = queries.permit_valid_at(chain.state, "BP-1", chain.time_ms)
        assert valid == (status == "issued" and permit.valid_from <= chain.time_ms)

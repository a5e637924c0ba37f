"""gov.propose / gov.approve / gov.withdraw: the flow, each kind executed, every refusal."""

from __future__ import annotations

import pytest

from contracts import state_keys as sk
from contracts.governance_payloads import MAX_GRANT_MEMBERS
from contracts.governance_records import REGISTRY_KEY, Registry
from contracts.identity_records import Member, Organisation
from contracts.params import AppParams
from contracts.record_cache import typed_record
from ledger.block import Receipt

from .gov_kit import (
    ADMIN,
    FOUNDERS,
    approve_all,
    grant,
    proposal,
    proposal_id,
    propose,
    role_grant,
)
from .harness import RESTRICTED, Chain, event_types, key, make_genesis, member_key, new_org


def member(chain: Chain, label: str) -> Member | None:
    raw = chain.state.get(sk.member_key(key(label).public_key))
    return None if raw is None else typed_record(Member, raw)


# --- the hole the issue names ----------------------------------------------------------------


def test_consent_roles_cannot_be_registered_directly() -> None:
    chain = Chain()
    for role in ("customs", "auditor", "energy_regulator", "permit_office"):
        new = {"public_key": key(f"direct-{role}").public_key, "name": "x", "roles": [role]}
        chain.fails("consent_required", ADMIN["port"], "identity.register_member", new)
    # nor as a new organisation's first member
    org = new_org("rogue-agency", "Rogue", "agency", key("rogue"), "a", ["admin", "auditor"])
    chain.fails("consent_required", ADMIN["customs"], "identity.register_org", org)
    # roles outside the consent list are still an admin's to give
    chain.ok(
        ADMIN["port"],
        "identity.register_member",
        {"public_key": key("ops-2").public_key, "name": "ops-2", "roles": ["port"]},
    )


def test_consent_roles_are_a_genesis_parameter() -> None:
    app = {"restricted_hs_codes": RESTRICTED, "gov_consent_roles": ["auditor"]}
    chain = Chain(genesis=make_genesis(app))
    new = {"public_key": key("c").public_key, "name": "c", "roles": ["customs"]}
    chain.ok(ADMIN["customs"], "identity.register_member", new)
    new = {"public_key": key("a").public_key, "name": "a", "roles": ["auditor"]}
    chain.fails("consent_required", ADMIN["customs"], "identity.register_member", new)


# --- the threshold ---------------------------------------------------------------------------


def test_role_grant_executes_at_more_than_two_thirds_of_the_founders() -> None:
    chain = Chain()
    pid = propose(chain, "port", role_grant())
    # 5 founding agencies: more than 2/3 is 4; the proposer's agency counts
    assert proposal(chain, pid).approvals == ("port",)
    approve_all(chain, pid, ["customs", "permits"])
    assert proposal(chain, pid).status == "pending" and member(chain, "new-officer") is None
    receipt = chain.ok(ADMIN["energy"], "gov.approve", {"id": pid})
    assert "gov.executed" in event_types(receipt)
    done = proposal(chain, pid)
    assert done.status == "executed" and done.effective_height == chain.height
    granted = member(chain, "new-officer")
    assert granted is not None and granted.org == "port" and granted.roles == ("customs",)
    # the registry no longer lists it as open
    registry = typed_record(Registry, chain.state.data[REGISTRY_KEY])
    assert registry.count == 1 and registry.open == ()


def test_one_grant_seats_several_members() -> None:
    chain = Chain()
    members = [(key(f"shift-{n}").public_key, f"shift-{n}", ("auditor",)) for n in range(3)]
    pid = propose(chain, "port", grant("port", members))
    approve_all(chain, pid, ["customs", "permits", "energy"])
    assert all(member(chain, f"shift-{n}") is not None for n in range(3))
    org = chain.state.data[sk.org_key("port")]

    listed = typed_record(Organisation, org).members
    assert [key(f"shift-{n}").public_key.hex() for n in range(3)] == list(listed[-3:])


def test_the_largest_grant_leaves_a_receipt_that_reads_back() -> None:
    chain = Chain()
    members = [
        (key(f"big-{n}").public_key, f"big-{n}", ("customs",)) for n in range(MAX_GRANT_MEMBERS)
    ]
    pid = propose(chain, "port", grant("port", members))
    receipt = approve_all(chain, pid, ["customs", "permits", "energy"])[-1]
    assert "gov.executed" in event_types(receipt)
    assert Receipt.from_obj(receipt.to_obj()) == receipt  # within the receipt's event limit
    too_many = [*members, (key("one-more").public_key, "one-more", ("customs",))]
    chain.fails("bad_payload", ADMIN["port"], "gov.propose", grant("port", too_many))


def test_role_grant_extends_an_existing_member() -> None:
    chain = Chain()
    officer = member_key("port", "officer").public_key
    pid = propose(chain, "port", grant("port", [(officer, "officer", ("customs",))]))
    approve_all(chain, pid, ["customs", "permits", "energy"])
    raw = chain.state.data[sk.member_key(member_key("port", "officer").public_key)]
    assert typed_record(Member, raw).roles == ("customs", "port")


# --- refusal paths ---------------------------------------------------------------------------


def test_unknown_proposal() -> None:
    chain = Chain()
    for kind in ("gov.approve", "gov.withdraw"):
        chain.fails("not_found", ADMIN["customs"], kind, {"id": "gov-" + "00" * 16})


def test_double_approval_is_refused() -> None:
    chain = Chain()
    pid = propose(chain, "port", role_grant())
    chain.fails("duplicate", ADMIN["port"], "gov.approve", {"id": pid})  # proposer's org
    chain.ok(ADMIN["customs"], "gov.approve", {"id": pid})
    chain.fails("duplicate", ADMIN["customs"], "gov.approve", {"id": pid})


def test_non_founding_admins_neither_propose_nor_approve() -> None:
    chain = Chain()
    # a trader's and a carrier's admin are admins of genesis organisations, not agencies
    for org in ("exporter", "carrier-a"):
        chain.fails("forbidden", ADMIN[org], "gov.propose", role_grant())
    pid = propose(chain, "port", role_grant())
    chain.fails("forbidden", ADMIN["exporter"], "gov.approve", {"id": pid})
    # members without the admin role are refused before the handler
    chain.fails("forbidden_role", member_key("customs", "officer"), "gov.approve", {"id": pid})


def test_expired_proposal_refuses_approval_and_withdrawal() -> None:
    app = {"restricted_hs_codes": RESTRICTED, "gov_proposal_ttl": 2}
    chain = Chain(genesis=make_genesis(app))
    pid = propose(chain, "port", role_grant())
    created = proposal(chain, pid)
    assert created.expires_height == created.created_height + 2
    chain.ok(ADMIN["customs"], "gov.approve", {"id": pid})
    chain.ok(ADMIN["permits"], "gov.approve", {"id": pid})  # at expires_height: still open
    chain.fails("proposal_expired", ADMIN["energy"], "gov.approve", {"id": pid})
    chain.fails("proposal_expired", ADMIN["port"], "gov.withdraw", {"id": pid})
    assert proposal(chain, pid).status_at(chain.height) == "expired"
    assert member(chain, "new-officer") is None


def test_withdraw_only_by_the_proposer_and_only_while_pending() -> None:
    chain = Chain()
    pid = propose(chain, "port", role_grant())
    chain.fails("forbidden", ADMIN["customs"], "gov.withdraw", {"id": pid})
    chain.ok(ADMIN["port"], "gov.withdraw", {"id": pid})
    assert proposal(chain, pid).status == "withdrawn"
    chain.fails("wrong_state", ADMIN["port"], "gov.withdraw", {"id": pid})
    chain.fails("wrong_state", ADMIN["customs"], "gov.approve", {"id": pid})


def test_executed_proposal_takes_no_more_approvals() -> None:
    chain = Chain()
    pid = propose(chain, "port", role_grant())
    approve_all(chain, pid, ["customs", "permits", "energy"])
    chain.fails("wrong_state", ADMIN["port"], "gov.withdraw", {"id": pid})


def test_bad_proposals_are_refused_at_once() -> None:
    chain = Chain()
    admin = ADMIN["customs"]
    chain.fails("bad_payload", admin, "gov.propose", {"kind": "make-me-king", "change": {}})
    chain.fails("bad_payload", admin, "gov.propose", {"kind": "role-grant", "change": {}})
    chain.fails("not_found", admin, "gov.propose", role_grant(org="nobody"))
    chain.fails("forbidden_role", admin, "gov.propose", role_grant(org="exporter"))
    taken = member_key("customs", "officer").public_key
    chain.fails("forbidden", admin, "gov.propose", grant("port", [(taken, "x", ("customs",))]))
    twice = grant("port", [(key("t").public_key, "a", ("customs",))] * 2)
    chain.fails("bad_payload", admin, "gov.propose", twice)
    bad = {"kind": "params-set", "change": {"params": {"energy_interval_ms": 1}}}
    chain.fails("bad_payload", admin, "gov.propose", bad)
    unknown = {"kind": "params-set", "change": {"params": {"gov_threshold": 1}}}
    chain.fails("bad_payload", admin, "gov.propose", unknown)
    # this harness executes blocks without certificates, so no validator has signed yet:
    # adding one would leave no recently live power at all (the liveness rail)
    add = {"kind": "validator-add", "change": {"public_key": bytes(32), "name": "n", "power": 1}}
    chain.fails("rail_liveness", admin, "gov.propose", add)


def test_open_proposals_are_bounded_per_organisation() -> None:
    chain = Chain()
    for n in range(8):
        propose(chain, "port", role_grant(label=f"bulk-{n}"))
    chain.fails("limit_exceeded", ADMIN["port"], "gov.propose", role_grant(label="one-more"))
    # another founder is not held up by it
    propose(chain, "customs", role_grant(label="other"))


def test_a_changed_world_refuses_the_proposal_at_execution() -> None:
    chain = Chain()
    first = propose(chain, "port", role_grant(label="same-key"))
    second = propose(chain, "customs", role_grant("customs", "same-key", ("auditor",)))
    approve_all(chain, first, ["customs", "permits", "energy"])
    receipt = approve_all(chain, second, ["port", "permits"])[-1]
    assert receipt.ok
    last = chain.ok(ADMIN["energy"], "gov.approve", {"id": second})
    assert "gov.refused" in event_types(last)
    refused = proposal(chain, second)
    assert refused.status == "refused" and refused.refusal == "forbidden"
    assert member(chain, "same-key") is not None and member(chain, "same-key").org == "port"  # type: ignore[union-attr]


# --- suspension, params, founding ------------------------------------------------------------


def suspend(chain: Chain, org: str) -> str:
    pid = propose(chain, "customs", {"kind": "org-suspend", "change": {"org": org, "reason": "r"}})
    approve_all(chain, pid, ["port", "permits", "energy"])
    assert proposal(chain, pid).status == "executed"
    return pid


def test_suspended_organisation_sends_nothing() -> None:
    chain = Chain()
    suspend(chain, "exporter")
    before = dict(chain.state.data)
    clerk = member_key("exporter", "clerk")
    payload = {"id": "P-9", "type": "import_licence", "address": "a", "description": "d"}
    assert chain.send(clerk, "permit.apply", payload).code == "suspended"
    assert chain.state.data == before  # not even the nonce
    pid = propose(
        chain, "port", {"kind": "org-unsuspend", "change": {"org": "exporter", "reason": "ok"}}
    )
    approve_all(chain, pid, ["customs", "permits", "energy"])
    chain.ok(clerk, "permit.apply", payload)


def test_suspended_founder_no_longer_counts() -> None:
    chain = Chain()
    suspend(chain, "energy")
    # 4 founding agencies left (audit has no admin): more than 2/3 of 4 is 3
    pid = propose(chain, "port", role_grant())
    approve_all(chain, pid, ["customs", "permits"])
    assert proposal(chain, pid).status == "executed"
    chain.fails("suspended", ADMIN["energy"], "gov.approve", {"id": pid})


def test_params_set_changes_the_parameters_from_the_next_block() -> None:
    chain = Chain()
    change = {"params": {"restricted_hs_codes": ["2903"], "max_event_age_ms": 86_400_000}}
    pid = propose(chain, "customs", {"kind": "params-set", "change": change})
    approve_all(chain, pid, ["port", "permits", "energy"])
    assert proposal(chain, pid).effective_height == chain.height + 1
    params = AppParams.from_stored(chain.state.data[sk.params_key()])
    assert params.restricted_hs_codes == ("2903",) and params.max_event_age_ms == 86_400_000
    assert params.energy_interval_ms == AppParams.from_genesis(chain.genesis).energy_interval_ms


def test_founding_admit_adds_an_approver() -> None:
    chain = Chain()
    new_admin = key("harbour/admin")
    org = new_org("harbour", "Harbour Agency", "agency", new_admin, "admin", ["admin"])
    chain.ok(ADMIN["customs"], "identity.register_org", org)
    chain.fails("forbidden", new_admin, "gov.propose", role_grant())
    pid = propose(chain, "customs", {"kind": "founding-admit", "change": {"org": "harbour"}})
    approve_all(chain, pid, ["port", "permits", "energy"])
    assert proposal(chain, pid).status == "executed"
    # now 6 founders: more than 2/3 is 5
    grant = propose(chain, "port", role_grant())
    approve_all(chain, grant, ["customs", "permits", "energy"])
    assert proposal(chain, grant).status == "pending"
    chain.ok(new_admin, "gov.approve", {"id": grant})
    assert proposal(chain, grant).status == "executed"
    again = {"kind": "founding-admit", "change": {"org": "customs"}}
    chain.fails("wrong_state", ADMIN["port"], "gov.propose", again)
    chain.fails(
        "wrong_state",
        ADMIN["port"],
        "gov.propose",
        {"kind": "founding-admit", "change": {"org": "exporter"}},
    )


@pytest.mark.parametrize("founders", FOUNDERS)
def test_every_founder_may_propose(founders: str) -> None:
    chain = Chain()
    receipt = chain.ok(ADMIN[founders], "gov.propose", role_grant(label=f"by-{founders}"))
    assert proposal(chain, proposal_id(receipt)).proposer_org == founders

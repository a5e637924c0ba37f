"""Validator kinds through a faked consensus side: the flow, the rails at proposal and at
execution, the proof of possession, suspension removing an organisation's validator."""

from __future__ import annotations

import pytest

from contracts.governance_payloads import possession_message
from contracts.governance_records import SCHEDULED_KEY, ScheduledList
from contracts.governance_validators import ValidatorUpdate
from contracts.record_cache import typed_record
from ledger.crypto import PrivateKey, Purpose
from ledger.encoding import Value

from .gov_kit import (
    ADMIN,
    VALIDATOR_KEYS,
    FakeConsensus,
    approve_all,
    consensus,
    proposal,
    propose,
    validator_set,
)
from .harness import Chain, make_genesis

LIVE = 10**9  # a last-signed height that is always recent
NEW = PrivateKey.from_label("gov-test/new-validator")


def fake(n: int = 4) -> FakeConsensus:
    vs = validator_set(n)
    return FakeConsensus(vs, {v.public_key: LIVE for v in vs.validators})


def add(key: bytes, name: str, power: int = 1, org: str = "") -> dict[str, Value]:
    change: dict[str, Value] = {"public_key": key, "name": name, "power": power}
    return {"kind": "validator-add", "change": change | ({"org": org} if org else {})}


def test_validator_add_schedules_one_update(monkeypatch: pytest.MonkeyPatch) -> None:
    with consensus(monkeypatch, fake(5)) as f:
        chain = Chain()
        pid = propose(chain, "customs", add(NEW.public_key, "carrier-node", org="carrier-a"))
        approve_all(chain, pid, ["port", "permits", "energy"])
        done = proposal(chain, pid)
        assert done.status == "executed" and done.effective_height == chain.height + 2
        assert f.scheduled == [(chain.height, [ValidatorUpdate(NEW.public_key, 1, "carrier-node")])]
        pending = typed_record(ScheduledList, chain.state.data[SCHEDULED_KEY]).updates
        assert [(u.public_key, u.org) for u in pending] == [(NEW.public_key, "carrier-a")]
        # the new node has not signed: a second unsigned validator is refused
        other = PrivateKey.from_label("gov-test/other").public_key
        second = add(other, "x", org="exporter")
        chain.fails("rail_unsigned_pending", ADMIN["customs"], "gov.propose", second)
        # once it signs, the next one may come
        f.last_signed[NEW.public_key] = LIVE
        chain.ok(ADMIN["customs"], "gov.propose", second)


def test_add_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    with consensus(monkeypatch, fake()):
        chain = Chain()
        admin = ADMIN["customs"]
        # the proposer's agency already runs one: two of five is over a third
        chain.fails("rail_org_power", admin, "gov.propose", add(NEW.public_key, "n"))
        existing = VALIDATOR_KEYS[0].public_key
        chain.fails("duplicate", admin, "gov.propose", add(existing, "n", org="audit"))
        chain.fails("duplicate", admin, "gov.propose", add(NEW.public_key, "port", org="audit"))
        chain.fails("not_found", admin, "gov.propose", add(NEW.public_key, "n", org="nobody"))


def test_remove_and_power_keep_the_rails(monkeypatch: pytest.MonkeyPatch) -> None:
    with consensus(monkeypatch, fake(5)):
        chain = Chain()
        admin = ADMIN["customs"]
        v0 = VALIDATOR_KEYS[0].public_key
        power = {"kind": "validator-power", "change": {"public_key": v0, "power": 3}}
        chain.fails("rail_org_power", admin, "gov.propose", power)
        power1 = {"kind": "validator-power", "change": {"public_key": v0, "power": 1}}
        chain.fails("wrong_state", admin, "gov.propose", power1)
        remove = {"kind": "validator-remove", "change": {"public_key": v0}}
        pid = propose(chain, "customs", remove)
        approve_all(chain, pid, ["port", "permits", "energy"])
        assert proposal(chain, pid).status == "executed"
        # the removal is scheduled: the set is counted as 4 from now on, the minimum
        v1 = VALIDATOR_KEYS[1].public_key
        again = {"kind": "validator-remove", "change": {"public_key": v1}}
        chain.fails("rail_min_validators", admin, "gov.propose", again)
        gone = {"kind": "validator-remove", "change": {"public_key": v0}}
        chain.fails("not_found", admin, "gov.propose", gone)


def test_rails_are_checked_again_at_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    with consensus(monkeypatch, fake()) as f:
        chain = Chain(genesis=make_genesis({"gov_liveness_window": 1}))
        pid = propose(chain, "customs", add(NEW.public_key, "audit-node", org="audit"))
        approve_all(chain, pid, ["port", "permits"])
        f.last_signed[VALIDATOR_KEYS[3].public_key] = 0  # a node went down meanwhile
        approve_all(chain, pid, ["energy"])
        refused = proposal(chain, pid)
        assert refused.status == "refused" and refused.refusal == "rail_liveness"
        assert f.scheduled == [] and SCHEDULED_KEY not in chain.state.data


def rotation(
    old: PrivateKey, new: PrivateKey, chain_id: str, signer: PrivateKey | None = None
) -> dict[str, Value]:
    proof = (signer or new).sign(
        Purpose.VALIDATOR_KEY, chain_id, possession_message(old.public_key, new.public_key)
    )
    change: dict[str, Value] = {
        "public_key": old.public_key,
        "new_public_key": new.public_key,
        "proof": proof,
    }
    return {"kind": "validator-rotate", "change": change}


def test_rotation_needs_the_new_keys_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    with consensus(monkeypatch, fake(5)) as f:
        chain = Chain()
        old, cid, admin = VALIDATOR_KEYS[0], chain.genesis.chain_id, ADMIN["customs"]
        chain.fails("bad_payload", admin, "gov.propose", rotation(old, NEW, cid, signer=old))
        chain.fails("bad_payload", admin, "gov.propose", rotation(old, NEW, "other-chain"))
        pid = propose(chain, "customs", rotation(old, NEW, cid))
        approve_all(chain, pid, ["port", "permits", "energy"])
        assert proposal(chain, pid).status == "executed"
        [(_, updates)] = f.scheduled
        assert updates == [
            ValidatorUpdate(old.public_key, 0, "customs"),
            ValidatorUpdate(NEW.public_key, 1, "customs"),
        ]


def test_suspension_removes_the_organisations_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    with consensus(monkeypatch, fake(4)):
        chain = Chain()
        suspend = {"kind": "org-suspend", "change": {"org": "port", "reason": "r"}}
        # four validators: removing port's would leave three
        chain.fails("rail_min_validators", ADMIN["customs"], "gov.propose", suspend)
    with consensus(monkeypatch, fake(5)) as f:
        chain = Chain()
        pid = propose(chain, "customs", suspend)
        approve_all(chain, pid, ["permits", "energy", "port"])
        assert proposal(chain, pid).status == "executed"
        [(_, updates)] = f.scheduled
        assert updates == [ValidatorUpdate(VALIDATOR_KEYS[1].public_key, 0, "port")]

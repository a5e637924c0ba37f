"""Governance parameters from genesis.app, the parameters read from state, and the read
rules and admission of governance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import state_keys as sk
from contracts.engine import check_transaction, genesis_state
from contracts.errors import ContractError
from contracts.governance_params import GovParams
from contracts.governance_payloads import CHANGES, parse_propose
from contracts.governance_records import proposal_key
from contracts.params import AppParams
from contracts.read_rules import Reader, may_read_key, may_read_tx, reader_for
from ledger.encoding import Value, encode
from ledger.errors import ValidationError

from .gov_kit import ADMIN, approve_all, propose, role_grant
from .harness import Chain, make_genesis, member_key
from .test_kinds import values


@pytest.mark.parametrize(
    "app",
    [
        {"gov_threshold": {"num": 1, "den": 3}},  # two conflicting proposals could both pass
        {"gov_threshold": {"num": 3, "den": 3}},  # more than all: nothing could ever pass
        {"gov_threshold": {"num": 2}},
        {"gov_threshold": [2, 3]},
        {"gov_consent_roles": ["admin"]},  # admins run their own organisations
        {"gov_consent_roles": ["pilot"]},
        {"gov_consent_roles": "customs"},
        {"gov_proposal_ttl": 0},
        {"gov_liveness_window": True},
        {"min_validators": 201},
    ],
)
def test_bad_governance_parameters_refuse_the_genesis(app: dict[str, Value]) -> None:
    with pytest.raises(ValidationError):
        genesis_state(make_genesis(app))


def test_threshold_is_more_than_the_fraction() -> None:
    two_thirds = GovParams()
    assert [two_thirds.needed(n) for n in (1, 3, 4, 5, 6, 10)] == [1, 3, 3, 4, 5, 7]
    half = GovParams.from_app({"gov_threshold": {"num": 1, "den": 2}})
    assert [half.needed(n) for n in (1, 2, 4, 5)] == [1, 2, 3, 3]


def test_stored_parameters_round_trip() -> None:
    params = AppParams(restricted_hs_codes=("2903",), energy_interval_ms=60_000)
    assert AppParams.from_stored(encode(params.to_obj())) == params
    with pytest.raises(ValidationError):
        AppParams.from_stored(encode({"energy_interval_ms": 1}))


def test_governance_records_and_transactions_are_for_members() -> None:
    chain = Chain()
    pid = propose(chain, "port", role_grant())
    key = proposal_key(pid)
    public = Reader.public()
    trader = reader_for(chain.state, member_key("exporter", "clerk").public_key)
    assert not may_read_key(chain.state, key, public)
    assert may_read_key(chain.state, key, trader)
    assert not may_read_key(chain.state, proposal_key("gov-" + "00" * 16), public)
    payload: Value = {"id": pid}
    sender = ADMIN["port"].public_key
    assert may_read_tx(chain.state, "gov.approve", sender, payload, trader)
    assert not may_read_tx(chain.state, "gov.approve", sender, payload, public)


def test_a_suspended_organisation_is_refused_at_admission_and_reads_as_the_public() -> None:
    chain = Chain()
    pid = propose(
        chain, "customs", {"kind": "org-suspend", "change": {"org": "exporter", "reason": "r"}}
    )
    approve_all(chain, pid, ["port", "permits", "energy"])
    clerk = member_key("exporter", "clerk")
    tx = chain.tx(
        clerk, "permit.apply", {"id": "P-1", "type": "event", "address": "a", "description": "d"}
    )
    error = check_transaction(chain.state, chain.genesis, tx)
    assert error is not None and error.code == "suspended"
    assert reader_for(chain.state, clerk.public_key) == Reader.public()
    assert sk.org_key("exporter") in chain.state.data  # the organisation itself stays


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(CHANGES)),
    st.dictionaries(
        st.sampled_from(
            [
                "params",
                "org",
                "members",
                "public_key",
                "power",
                "name",
                "proof",
                "new_public_key",
                "reason",
                "restricted_hs_codes",
                "energy_interval_ms",
            ]
        ),
        values,
        max_size=5,
    ),
)
def test_parsing_any_change_raises_only_bad_payload(kind: str, change: dict[str, Value]) -> None:
    for candidate in (change, {"params": change}):
        try:
            parse_propose({"kind": kind, "change": candidate})
        except ContractError as exc:
            assert exc.code == "bad_payload"

"""Founding a network: join requests, the assembled draft, the founders' signatures, and
every refusal of a genesis that lacks a signature or that nobody could govern or run."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from devnet.demo import demo_genesis
from devnet.demo_keys import public_demo_keys
from ledger.crypto import PrivateKey, Purpose
from ledger.errors import DecodeError, LedgerError, ValidationError
from ledger.founding import FoundingSignature, GenesisFile
from ledger.founding_assemble import assemble
from ledger.founding_checks import (
    GenesisRefused,
    check_genesis_file,
    founding_report,
    min_validators,
)
from ledger.genesis import Genesis, Member, Organisation, ValidatorOrg
from ledger.join_request import (
    JoinRequest,
    JoinRequestError,
    join_request_from_json,
    make_join_request,
)
from ledger.validators import Validator, ValidatorSet

CHAIN = "founding-test"


class Agency:
    """One agency's keys, made on 'its own machine' (fresh random keys)."""

    def __init__(self, org_id: str, kind: str = "agency") -> None:
        self.org_id = org_id
        self.admin = PrivateKey.generate()
        self.officer = PrivateKey.generate()
        self.node = PrivateKey.generate()
        self.kind = kind

    def organisation(self) -> Organisation:
        members = (Member(self.admin.public_key, ("admin",), "admin"),)
        if self.kind == "agency":
            members += (Member(self.officer.public_key, ("customs",), "officer"),)
        return Organisation(self.org_id, self.org_id.title(), self.kind, "Busan", members)

    def request(self, chain_id: str = CHAIN) -> JoinRequest:
        validator = (f"{self.org_id}-node", self.node, f"{self.org_id}.example:26656")
        return make_join_request(chain_id, self.organisation(), validator, [self.admin])


def founders(n: int = 4) -> list[Agency]:
    return [Agency(f"agency-{i}") for i in range(n)]


def draft_of(agencies: list[Agency]) -> GenesisFile:
    return assemble([(f"{a.org_id}.json", a.request()) for a in agencies], CHAIN, 1_000)


def signed(agencies: list[Agency]) -> GenesisFile:
    file = draft_of(agencies)
    for a in agencies:
        file = file.signed_by(a.admin)
    return file


def refusal(file: GenesisFile) -> str:
    with pytest.raises(GenesisRefused) as info:
        check_genesis_file(file, public_demo_keys())
    text = str(info.value)
    assert "\n" not in text
    return text


# --- the happy path ---------------------------------------------------------------------------


def test_four_agencies_found_a_network_whose_file_round_trips() -> None:
    agencies = founders()
    file = signed(agencies)
    check_genesis_file(file, public_demo_keys())
    report = founding_report(file, public_demo_keys())
    assert sorted(s.org for s in report.signed) == [a.org_id for a in agencies]
    assert report.unsigned == () and report.problems == ()
    again = GenesisFile.from_json(file.to_json())
    assert again.genesis.hash == file.genesis.hash
    assert again.signatures == file.signatures and len(again.peers) == 4
    check_genesis_file(again, public_demo_keys())


def test_the_hash_does_not_depend_on_the_signatures_nor_the_request_order() -> None:
    agencies = founders()
    unsigned = draft_of(agencies)
    assert signed(agencies).genesis.hash == unsigned.genesis.hash
    backwards = assemble([("x", a.request()) for a in reversed(agencies)], CHAIN, 1_000)
    assert backwards.genesis.hash == unsigned.genesis.hash
    assert Genesis.from_json(signed(agencies).to_json()).hash == unsigned.genesis.hash


def test_a_genesis_without_the_new_fields_keeps_its_hash() -> None:
    file = draft_of(founders())
    plain = file.genesis.replace(validator_orgs=())
    assert "devnet" not in plain.to_obj() and "validator_orgs" not in plain.to_obj()
    assert plain.replace(devnet=True).hash != plain.hash


# --- refusals of a genesis ---------------------------------------------------------------------


def test_a_missing_signature_is_refused() -> None:
    agencies = founders()
    file = draft_of(agencies)
    for a in agencies[:3]:
        file = file.signed_by(a.admin)
    assert "not signed by founding organisation(s) agency-3" in refusal(file)


def test_a_tampered_signature_is_refused() -> None:
    file = signed(founders())
    first = file.signatures[0]
    bad = FoundingSignature(
        first.org, first.public_key, bytes([first.signature[0] ^ 1]) + first.signature[1:]
    )
    text = refusal(replace(file, signatures=(bad, *file.signatures[1:])))
    assert "does not verify over this genesis hash" in text and first.org in text


def test_a_body_changed_after_signing_is_refused() -> None:
    file = signed(founders())
    doc = json.loads(file.to_json())
    doc["organisations"][0]["members"][1]["roles"] = ["auditor"]  # a role nobody signed
    text = refusal(GenesisFile.from_json(json.dumps(doc)))
    assert "the body was changed after signing" in text


def test_a_signature_for_another_purpose_or_by_a_non_admin_is_refused() -> None:
    agencies = founders()
    file = signed(agencies)
    g = file.genesis
    officer = agencies[0].officer
    as_officer = FoundingSignature(
        "agency-0", officer.public_key, officer.sign(Purpose.GENESIS, g.chain_id, g.hash)
    )
    assert "is not an admin of 'agency-0'" in refusal(replace(file, signatures=(as_officer,)))
    admin = agencies[0].admin
    wrong_tag = FoundingSignature(
        "agency-0", admin.public_key, admin.sign(Purpose.CHECKPOINT, g.chain_id, g.hash)
    )
    assert "does not verify" in refusal(replace(file, signatures=(wrong_tag, *file.signatures[1:])))
    with pytest.raises(ValidationError, match="not an admin"):
        file.signed_by(officer)


def test_fewer_validators_than_the_minimum_is_refused() -> None:
    assert "3 validator(s), fewer than the minimum of 4" in refusal(signed(founders(3)))
    agencies = founders(3)
    draft = assemble([("x", a.request()) for a in agencies], CHAIN, 1_000, {"min_validators": 3})
    for a in agencies:
        draft = draft.signed_by(a.admin)
    assert "only a devnet may go below 4" in refusal(draft)
    devnet = GenesisFile(draft.genesis.replace(devnet=True))
    check_genesis_file(devnet, public_demo_keys())  # a devnet may be smaller, and unsigned
    resigned = devnet.signed_by(agencies[0].admin)  # the old signatures: another body
    check_genesis_file(resigned, public_demo_keys())
    stale = replace(devnet, signatures=draft.signatures)
    assert "the body was changed after signing" in refusal(stale)
    with pytest.raises(GenesisRefused, match="positive integer"):
        min_validators(draft.genesis.replace(app={"min_validators": True}))


def test_a_validator_run_by_no_organisation_is_refused() -> None:
    agencies = founders()
    file = draft_of(agencies)
    orphan = file.genesis.replace(validator_orgs=file.genesis.validator_orgs[1:])
    file = GenesisFile(orphan)
    for a in agencies:
        file = file.signed_by(a.admin)
    assert "validator 'agency-0-node' is run by no founding organisation" in refusal(file)
    with pytest.raises(ValidationError, match="not a genesis organisation"):
        orphan.replace(validator_orgs=(ValidatorOrg(agencies[0].node.public_key, "nobody"),))


def test_a_genesis_nobody_could_govern_is_refused() -> None:
    carriers = [Agency(f"carrier-{i}", kind="carrier") for i in range(4)]
    assert "nobody could govern" in refusal(signed(carriers))


def test_an_unknown_role_does_not_load() -> None:
    doc = json.loads(signed(founders()).to_json())
    doc["organisations"][0]["members"][1]["roles"] = ["mayor"]
    with pytest.raises(ValidationError, match="unknown or missing roles"):
        GenesisFile.from_json(json.dumps(doc))


def test_a_demo_key_is_refused_outside_a_devnet() -> None:
    agencies = founders()
    demo_admin = PrivateKey.from_label("demo/busan-customs/admin")
    agencies[0].admin = demo_admin
    text = refusal(signed(agencies))
    assert "member agency-0/admin use(s) a public demo key" in text
    demo = demo_genesis()
    assert demo.devnet
    check_genesis_file(GenesisFile(demo), public_demo_keys())  # the demo itself: a devnet
    not_devnet = GenesisFile(demo.replace(devnet=False))
    problems = founding_report(not_devnet, public_demo_keys()).problems
    assert any("validator 'demo-0' and " in p and "public demo key" in p for p in problems)


def test_devnet_must_be_a_boolean_in_the_file() -> None:
    doc = json.loads(signed(founders()).to_json())
    doc["devnet"] = "false"  # truthy: never read as a flag
    with pytest.raises(ValidationError, match="true or false"):
        GenesisFile.from_json(json.dumps(doc))


# --- join requests -----------------------------------------------------------------------------


def test_a_request_round_trips_and_verifies() -> None:
    req = Agency("busan-customs").request()
    again = join_request_from_json(req.to_json())
    assert again == req
    again.verify()


def test_a_bad_proof_of_possession_is_refused() -> None:
    agency = Agency("busan-customs")
    doc = json.loads(agency.request().to_json())
    other = PrivateKey.generate()  # claims a validator key it does not hold
    doc["validator"]["public_key"] = other.public_key.hex()
    with pytest.raises(JoinRequestError, match="proof of possession does not verify"):
        join_request_from_json(json.dumps(doc)).verify()


def test_a_request_changed_after_signing_is_refused() -> None:
    doc = json.loads(Agency("busan-customs").request().to_json())
    doc["organisation"]["members"][1]["roles"] = ["auditor"]
    doc_req = join_request_from_json(json.dumps(doc))
    with pytest.raises(JoinRequestError, match="does not verify"):
        doc_req.verify()


def test_a_request_for_another_chain_is_refused_at_assembly() -> None:
    agencies = founders()
    requests = [("a.json", agencies[0].request("other-chain"))]
    requests += [(f"{a.org_id}.json", a.request()) for a in agencies[1:]]
    with pytest.raises(JoinRequestError, match=r"a\.json is a request for chain 'other-chain'"):
        assemble(requests, CHAIN, 1_000)


def test_duplicates_are_refused_at_assembly_naming_both_files() -> None:
    agencies = founders()
    twin = Agency("agency-0")
    requests = [(f"{a.org_id}.json", a.request()) for a in agencies] + [
        ("twin.json", twin.request())
    ]
    with pytest.raises(
        JoinRequestError,
        match=r"organisation id 'agency-0' is in both agency-0\.json and twin\.json",
    ):
        assemble(requests, CHAIN, 1_000)
    thief = Agency("thief")
    thief.node = agencies[1].node  # the same validator key, under another organisation
    requests = [(f"{a.org_id}.json", a.request()) for a in agencies] + [
        ("thief.json", thief.request())
    ]
    with pytest.raises(JoinRequestError, match=r"is in both agency-1\.json and thief\.json"):
        assemble(requests, CHAIN, 1_000)


def test_malformed_requests_are_one_line_refusals() -> None:
    good = json.loads(Agency("busan-customs").request().to_json())
    cases = [
        {**good, "cityledger_join_request": 2},
        {**good, "signatures": "none"},
        {**good, "validator": {**good["validator"], "p2p": "no-port"}},
        {**good, "organisation": {**good["organisation"], "id": "Bad Id"}},
    ]
    for doc in cases:
        with pytest.raises(LedgerError) as info:
            join_request_from_json(json.dumps(doc))
        assert "\n" not in str(info.value)
    with pytest.raises(DecodeError):
        join_request_from_json("[1, 2")


def test_a_request_without_an_admin_signature_is_refused() -> None:
    agency = Agency("busan-customs")
    req = agency.request()
    with pytest.raises(JoinRequestError, match="every admin must sign"):
        replace(req, signatures=()).verify()
    no_admin = Organisation(
        "x", "X", "agency", "Busan", (Member(agency.officer.public_key, ("customs",), "o"),)
    )
    with pytest.raises(JoinRequestError, match="no member has the admin role"):
        make_join_request(CHAIN, no_admin, None, [])


def test_a_validator_set_from_requests_gives_each_power_one() -> None:
    g = draft_of(founders()).genesis
    assert g.validators == ValidatorSet(
        tuple(Validator(v.name, v.public_key, 1) for v in g.validators.validators)
    )


def test_validator_orgs_follow_the_validator_order_so_the_file_keeps_the_hash() -> None:
    g = draft_of(founders()).genesis
    with pytest.raises(ValidationError, match="validators' order"):
        g.replace(validator_orgs=tuple(reversed(g.validator_orgs)))
    with pytest.raises(ValidationError, match="validators' order"):
        g.replace(validator_orgs=(g.validator_orgs[0], g.validator_orgs[0]))
    assert Genesis.from_json(g.to_json()).hash == g.hash


def test_two_validators_at_one_address_are_refused_at_assembly() -> None:
    agencies = founders()
    requests = [(f"{a.org_id}.json", a.request()) for a in agencies]
    same = Agency("late")
    clash = make_join_request(
        CHAIN, same.organisation(), ("late-node", same.node, "agency-0.example:26656"), [same.admin]
    )
    with pytest.raises(JoinRequestError, match=r"p2p address agency-0\.example:26656 is in both"):
        assemble([*requests, ("late.json", clash)], CHAIN, 1_000)


def test_malformed_signature_entries_do_not_load() -> None:
    doc = json.loads(signed(founders()).to_json())
    for bad in ({"signature": "zz"}, {"signature": "00" * 63}, {"org": 7}, {"public_key": None}):
        broken = {**doc, "founding_signatures": [{**doc["founding_signatures"][0], **bad}]}
        with pytest.raises(DecodeError, match="FoundingSignature entry"):
            GenesisFile.from_json(json.dumps(broken))
    with pytest.raises(DecodeError, match="must be lists"):
        GenesisFile.from_json(json.dumps({**doc, "founding_signatures": {"a": 1}}))


def test_a_role_the_organisation_kind_may_not_grant_is_refused() -> None:
    from contracts.identity import ORG_KIND_ROLES

    agencies = founders()
    trader = Agency("acme", kind="trader")
    org = Organisation(
        "acme",
        "Acme",
        "trader",
        "Busan",
        (
            Member(trader.admin.public_key, ("admin",), "admin"),
            Member(trader.officer.public_key, ("customs",), "fake-officer"),
        ),
    )
    requests = [(f"{a.org_id}.json", a.request()) for a in agencies]
    requests.append(("acme.json", make_join_request(CHAIN, org, None, [trader.admin])))
    file = assemble(requests, CHAIN, 1_000)
    for signer in [*agencies, trader]:
        file = file.signed_by(signer.admin)
    check_genesis_file(file, public_demo_keys())  # without the table: not checked
    with pytest.raises(
        GenesisRefused, match=r"acme/fake-officer: .*'trader' cannot grant roles \['customs'\]"
    ):
        check_genesis_file(file, public_demo_keys(), ORG_KIND_ROLES)

"""The organisation directory (``search_buckets.ORGANISATIONS``): every organisation, in
genesis order and then registration order, written where organisations are created,
the same rows on every node."""

from __future__ import annotations

from contracts import queries
from contracts import search_buckets as sb
from contracts.engine import genesis_state
from ledger.encoding import decode

from .harness import Chain, key, make_genesis
from .test_identity import CUSTOMS_ADMIN, EXPORTER_ADMIN, org_payload

DIRECTORY = sb.ORGANISATIONS


def _members(chain: Chain) -> list[bytes]:
    count = queries.bucket_count(chain.state, DIRECTORY)
    return queries.bucket_members(chain.state, DIRECTORY, 0, count)


def test_the_founders_are_in_the_directory_in_genesis_order() -> None:
    chain = Chain()
    founders = [f"org/{o.id}".encode() for o in chain.genesis.organisations]
    assert len(founders) > 3
    assert _members(chain) == founders
    org_keys = {k for k in chain.state.data if k.startswith(b"org/")}
    assert set(founders) == org_keys  # nothing else, nothing left out


def test_the_genesis_rows_are_the_rows_a_join_writes() -> None:
    """A genesis bucket has the shape of one filled by transactions: one slot per member
    naming its key and salt, the salt kept, the head counting them."""
    state = genesis_state(make_genesis())
    assert state == genesis_state(make_genesis())  # deterministic
    first = decode(state[DIRECTORY.slot_key(0)])
    assert isinstance(first, dict) and first["key"] == b"org/customs"
    assert decode(state[sb.salt_key(b"org/customs")]) == {"salt": first["salt"]}
    assert len(first["salt"]) == sb.SALT_SIZE
    salts = [decode(v) for k, v in state.items() if k.startswith(sb.SALT_PREFIX)]
    assert len({repr(s) for s in salts}) == len(make_genesis().organisations)  # each its own


def test_registering_an_organisation_files_it_last() -> None:
    chain = Chain()
    before = _members(chain)
    outcome = chain.block([chain.tx(CUSTOMS_ADMIN, "identity.register_org", org_payload())])
    assert outcome.receipts[0].ok
    assert _members(chain) == [*before, b"org/newco"]
    written = {k for k, v in outcome.state_changes.items() if k.startswith(sb.PREFIX)}
    n = len(before)
    assert written == {DIRECTORY.head_key, DIRECTORY.slot_key(n), sb.salt_key(b"org/newco")}
    slot = decode(chain.state.get(DIRECTORY.slot_key(n)) or b"")
    assert isinstance(slot, dict) and slot["key"] == b"org/newco"


def test_a_refused_registration_files_nothing() -> None:
    chain = Chain()
    chain.fails("forbidden", EXPORTER_ADMIN, "identity.register_org", org_payload())
    chain.ok(CUSTOMS_ADMIN, "identity.register_org", org_payload())
    chain.fails("duplicate", CUSTOMS_ADMIN, "identity.register_org", org_payload())
    assert _members(chain).count(b"org/newco") == 1


def _second_org() -> dict[str, object]:
    admin = key("hanjin/admin")
    members = [{"public_key": admin.public_key, "name": "admin", "roles": ["admin"]}]
    return org_payload(id="hanjin", name="Hanjin Shipping", members=members)


def test_two_chains_given_the_same_blocks_write_the_same_directory() -> None:
    rows = []
    for _ in range(2):
        chain = Chain()
        chain.ok(CUSTOMS_ADMIN, "identity.register_org", org_payload())
        chain.ok(CUSTOMS_ADMIN, "identity.register_org", _second_org())
        rows.append({k: v for k, v in chain.state.data.items() if k.startswith(sb.PREFIX)})
        assert _members(chain)[-2:] == [b"org/newco", b"org/hanjin"]
    assert rows[0] == rows[1]

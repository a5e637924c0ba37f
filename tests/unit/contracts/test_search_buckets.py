"""The proven search buckets hold exactly what the local index lists, densely, with no
member twice; leaving moves the last member into the freed slot."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from contracts import index_keys as ik
from contracts import queries
from contracts import search_buckets as sb
from contracts import shipment_search as search
from contracts.context import BlockBuffer, Sender, TxContext
from contracts.params import AppParams
from contracts.shipment_records import Shipment
from ledger.crypto import PrivateKey
from ledger.encoding import decode
from ledger.storage.keys import INDEX
from ledger.tx import Transaction

from .harness import make_genesis
from .test_demo import loaded


def _index_buckets() -> dict[tuple[str, str], set[bytes]]:
    """What the local index files under each bucket: (family, name) -> record keys."""
    chain, _ = loaded()
    out: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    for key, record_key in chain.index.iterate(INDEX):
        family, _, rest = key[len(INDEX) :].partition(b"/")  # (salt rows are not buckets)
        if family.decode() not in sb.FAMILIES:
            continue
        if family == b"permit-address":
            name = rest.rsplit(b"\x00", 1)[0].decode()
        elif family == b"trade-account":
            name = rest.split(b"/", 1)[0].decode()
        else:
            name = rest.rsplit(b"/", 1)[0].decode()
        out[(family.decode(), name)].add(record_key)
    return out


STATE_ONLY = {sb.SHIPMENT_HS.name, sb.SHIPMENT_PORT.name, sb.SHIPMENT_DAY.name}


def _record_buckets() -> dict[tuple[str, str], set[bytes]]:
    """The state-only buckets (no local index) as the shipment and organisation records
    say they must be."""
    chain, _ = loaded()
    out: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    for key, raw in chain.state.data.items():
        if key.startswith(b"org/"):
            out[(sb.ORG_DIRECTORY.name, sb.ORGANISATIONS.name)].add(key)
        if not key.startswith(b"shipment/") or key.count(b"/") != 1:
            continue
        s = Shipment.from_obj(decode(raw))
        names = [(sb.SHIPMENT_HS.name, h) for h in search.hs_headings(s)]
        names += [(sb.SHIPMENT_PORT.name, p) for p in search.ports(s)]
        names.append((sb.SHIPMENT_DAY.name, search.day_of(s.declared_time_ms)))
        for name in names:
            out[name].add(key)
    return out


def _all_buckets() -> dict[tuple[str, str], set[bytes]]:
    return {**_index_buckets(), **_record_buckets()}


def test_every_index_bucket_is_proven_in_state_exactly() -> None:
    chain, _ = loaded()
    buckets = _all_buckets()
    assert {family for family, _ in buckets} == set(sb.FAMILIES)
    assert len({name for family, name in buckets if family == sb.SHIPMENT_DAY.name}) > 1
    for (family, name), expected in buckets.items():
        bucket = sb.FAMILIES[family].bucket(name)
        count = queries.bucket_count(chain.state, bucket)
        members = queries.bucket_members(chain.state, bucket, 0, count + 5)
        assert len(members) == count == len(expected), (family, name)
        assert set(members) == expected, (family, name)
        if bucket.family.removable:
            for slot, member in enumerate(members):
                raw = chain.state.get(bucket.reverse_key(member))
                assert raw is not None and decode(raw) == {"slot": slot}


def test_no_bucket_row_is_left_behind() -> None:
    """Every search row in state belongs to a bucket the index lists (left buckets deleted)."""
    chain, _ = loaded()
    heads = {sb.FAMILIES[f].bucket(n).head_key for f, n in _all_buckets()}
    for key in chain.state.data:
        if key.startswith(sb.PREFIX) and not key.startswith(sb.SALT_PREFIX):
            assert b"/".join(key.split(b"/")[:3]) in heads, key


def _ctx() -> TxContext:
    key = PrivateKey.from_label("bucket-test")
    genesis = make_genesis()
    tx = Transaction.create(key, genesis.chain_id, "test.kind", 0, {})
    sender = Sender(key.public_key, "org", frozenset())
    block = BlockBuffer(base=_Empty())
    return TxContext(block, genesis, AppParams(), 1, 0, tx, sender)


class _Empty:
    def get(self, key: bytes) -> bytes | None:
        return None


def _members(ctx: TxContext, bucket: sb.Bucket) -> list[bytes]:
    return queries.bucket_members(ctx, bucket, 0, 100)


def test_leaving_moves_the_last_member_into_the_freed_slot() -> None:
    ctx = _ctx()
    bucket = sb.SHIPMENT_STATUS.bucket("held")
    for key in (b"shipment/A", b"shipment/B", b"shipment/C"):
        sb.join(ctx, bucket, key)
    sb.leave(ctx, bucket, b"shipment/A")
    assert _members(ctx, bucket) == [b"shipment/C", b"shipment/B"]
    assert decode(ctx.get(bucket.reverse_key(b"shipment/C")) or b"") == {"slot": 0}
    assert ctx.get(bucket.slot_key(2)) is None
    assert ctx.get(bucket.reverse_key(b"shipment/A")) is None
    sb.leave(ctx, bucket, b"shipment/B")  # the last one: nothing moves
    assert _members(ctx, bucket) == [b"shipment/C"]
    sb.leave(ctx, bucket, b"shipment/C")
    assert ctx.get(bucket.head_key) is None  # an empty bucket leaves no row


def test_bucket_keys_cannot_collide_whatever_the_name() -> None:
    a = sb.PERMIT_ADDRESS.bucket("1 main st/s/0")
    b = sb.PERMIT_ADDRESS.bucket("1 main st")
    assert a.head_key != b.slot_key(0)
    assert len(a.head_key) == len(b.head_key)
    assert sb.PERMIT_HOLDER.bucket("x").head_key != sb.SHIPMENT_PARTY.bucket("x").head_key


def test_a_record_keeps_the_salt_it_was_first_filed_with() -> None:
    ctx = _ctx()
    sb.join(ctx, sb.SHIPMENT_PARTY.bucket("acme"), b"shipment/A")
    sb.join(ctx, sb.SHIPMENT_STATUS.bucket("held"), b"shipment/A")
    sb.join(ctx, sb.SHIPMENT_STATUS.bucket("held"), b"shipment/B")
    a0 = decode(ctx.get(sb.SHIPMENT_PARTY.bucket("acme").slot_key(0)) or b"")
    a1 = decode(ctx.get(sb.SHIPMENT_STATUS.bucket("held").slot_key(0)) or b"")
    b1 = decode(ctx.get(sb.SHIPMENT_STATUS.bucket("held").slot_key(1)) or b"")
    assert isinstance(a0, dict) and isinstance(a1, dict) and isinstance(b1, dict)
    assert a0 == a1 and a0["key"] == b"shipment/A" and len(a0["salt"]) == sb.SALT_SIZE
    assert b1["salt"] != a0["salt"]  # each record its own salt
    assert decode(ctx.get(sb.salt_key(b"shipment/A")) or b"") == {"salt": a0["salt"]}


def test_the_salt_does_not_depend_on_the_signature() -> None:
    """A transaction's hash does not cover its signature: execution must not read it."""
    ctx, other = _ctx(), _ctx()
    other.tx = replace(other.tx, signature=bytes(64))
    for c in (ctx, other):
        sb.join(c, sb.SHIPMENT_PARTY.bucket("acme"), b"shipment/A")
    assert ctx.writes == other.writes


def test_the_index_keys_module_still_names_the_families() -> None:
    assert ik.SHIPMENT_STATUS.family.endswith(b"shipment-status/")

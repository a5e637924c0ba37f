"""Search buckets in authenticated state: what makes a search answer provably complete.

Every searchable index bucket (shipments with status ``held``, permits held by
``acme`` …) is also kept *in state* as a dense array of slots, so a node can
prove not only each record it lists but that it listed every member
(docs/formats-state.md §6):

=================================================  ===================================
``search/<family>/<H>``                            head: ``{"count": n}`` (absent: 0)
``search/<family>/<H>/s/<slot>``                   member ``slot`` (0 .. n-1):
                                                   ``{"key": record state key,
                                                   "salt": 16 bytes}``
``search/<family>/<H>/r/<record state key>``       reverse row ``{"slot": slot}``, only in
                                                   families a record can leave
``search/salt/<record state key>``                 ``{"salt": 16 bytes}``: the record's
                                                   salt, written when it is first filed
=================================================  ===================================

``H`` is the lowercase hex SHA-256 of the bucket name's UTF-8 bytes: a fixed 64
characters whatever the name holds (an address may hold ``/``), so no two
buckets' keys can collide and a client computes the keys from the name alone.
A record's salt is the hash of the payload of the transaction that first filed
it (a shipment's declaration: parties, goods, values) and its key, kept in
state so every later slot of it carries the same salt. A reader shown a slot
*redacted* (its value hash only) cannot test guessed ids against it without
guessing that payload, which its transaction's public hash already protects no
better and no worse. Not the signature: a transaction's hash does not cover its
signature, so execution must never depend on it (docs/formats-state.md §6).

:func:`join` and :func:`leave` are the only writers, called next to where the
contracts write the matching local index entries; they read only state (never
the unauthenticated index), so execution stays deterministic. What they read back
(heads, slots, salts) is what ``encode`` wrote there in execution, so it is decoded
with ``decode_trusted`` (ledger/encoding.py), as the contracts' records are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.context import TxContext
from ledger.digest import sha256_digest
from ledger.encoding import decode_trusted, encode

PREFIX = b"search/"
SALT_PREFIX = PREFIX + b"salt/"
SALT_SIZE = 16
_SALT_TAG = b"cityledger/search-salt/v1"


@dataclass(frozen=True, slots=True)
class Family:
    """A kind of bucket: its name in keys, and whether a member can leave it."""

    name: str  # never "salt" (its keys would meet the salt rows')
    removable: bool = False

    def bucket(self, name: str) -> Bucket:
        return Bucket(self, name)


SHIPMENT_STATUS = Family("shipment-status", removable=True)
SHIPMENT_PARTY = Family("shipment-party")
SHIPMENT_CONTAINER = Family("shipment-container")
SHIPMENT_HS = Family("shipment-hs")  # per HS heading (4 digits) of the goods lines
SHIPMENT_PORT = Family("shipment-port")  # per UN/LOCODE of origin and destination
SHIPMENT_DAY = Family("shipment-day")  # per UTC day of declaration, YYYY-MM-DD
PERMIT_HOLDER = Family("permit-holder")
PERMIT_ADDRESS = Family("permit-address")
TRADE_ACCOUNT = Family("trade-account")
ORG_DIRECTORY = Family("org-directory")  # one bucket, ORGANISATIONS: every organisation
FAMILIES = {
    f.name: f
    for f in (
        SHIPMENT_STATUS,
        SHIPMENT_PARTY,
        SHIPMENT_CONTAINER,
        SHIPMENT_HS,
        SHIPMENT_PORT,
        SHIPMENT_DAY,
        PERMIT_HOLDER,
        PERMIT_ADDRESS,
        TRADE_ACCOUNT,
        ORG_DIRECTORY,
    )
}


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket: a family and a name (``held``, an organisation id, an address)."""

    family: Family
    name: str
    head_key: bytes = field(init=False, repr=False, compare=False)
    """The key of the bucket's head row; its slot and reverse rows extend it. Made once
    for the bucket: a join or a leave uses it three to five times."""

    def __post_init__(self) -> None:
        digest = sha256_digest(self.name.encode()).hex()  # the C twin: no look-up by name
        head = PREFIX + self.family.name.encode() + b"/" + digest.encode()
        object.__setattr__(self, "head_key", head)

    def slot_key(self, slot: int) -> bytes:
        return self.head_key + b"/s/" + str(slot).encode()

    def reverse_key(self, record_key: bytes) -> bytes:
        return self.head_key + b"/r/" + record_key

    def describe(self) -> str:
        return f"{self.family.name} {self.name!r}"


ORGANISATIONS = ORG_DIRECTORY.bucket("all")
"""The organisation directory: every organisation ever registered (founding ones from
genesis, in genesis order, then each ``identity.register_org``), so that a client can
resolve a *name* to organisations and know it missed none (docs/formats-state.md §6.5)."""


def salt_key(record_key: bytes) -> bytes:
    return SALT_PREFIX + record_key


def make_salt(filing: bytes, record_key: bytes) -> bytes:
    """The salt of a record first filed by ``filing`` (canonical bytes of its payload)."""
    return sha256_digest(_SALT_TAG + filing + record_key)[:SALT_SIZE]


def salt_of(ctx: TxContext, record_key: bytes) -> bytes:
    """The record's salt: read from state, or made from this transaction and kept."""
    raw = ctx.get(salt_key(record_key))
    if raw is not None:
        kept = decode_trusted(raw)
        assert isinstance(kept, dict) and isinstance(kept.get("salt"), bytes)
        salt: bytes = kept["salt"]
        return salt
    salt = make_salt(encode(ctx.tx.payload), record_key)
    ctx.store(salt_key(record_key), {"salt": salt})
    return salt


def slot_value(record_key: bytes, salt: bytes) -> dict[str, bytes]:
    return {"key": record_key, "salt": salt}


def head_count(raw: bytes | None) -> int:
    """The member count a head row holds (an absent head: an empty bucket)."""
    if raw is None:
        return 0
    obj = decode_trusted(raw)
    assert isinstance(obj, dict) and isinstance(obj.get("count"), int), "malformed bucket head"
    count: int = obj["count"]
    return count


def seed(bucket: Bucket, members: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The rows of ``bucket`` holding ``members`` (record key, the canonical bytes that
    filed it) in that order, salts included: a bucket filled at genesis, where no
    transaction runs; the same rows :func:`join` would write one by one."""
    rows: dict[bytes, bytes] = {}
    for slot, (record_key, filing) in enumerate(members):
        salt = make_salt(filing, record_key)
        rows[salt_key(record_key)] = encode({"salt": salt})
        rows[bucket.slot_key(slot)] = encode(slot_value(record_key, salt))
        if bucket.family.removable:
            rows[bucket.reverse_key(record_key)] = encode({"slot": slot})
    if members:
        rows[bucket.head_key] = encode({"count": len(members)})
    return rows


def _set_count(ctx: TxContext, bucket: Bucket, count: int) -> None:
    if count == 0:
        ctx.delete(bucket.head_key)
    else:
        ctx.store(bucket.head_key, {"count": count})


def join(ctx: TxContext, bucket: Bucket, record_key: bytes) -> None:
    """Append ``record_key`` to ``bucket`` (the caller knows it is not yet a member)."""
    count = head_count(ctx.get(bucket.head_key))
    ctx.store(bucket.slot_key(count), slot_value(record_key, salt_of(ctx, record_key)))
    if bucket.family.removable:
        ctx.store(bucket.reverse_key(record_key), {"slot": count})
    _set_count(ctx, bucket, count + 1)


def leave(ctx: TxContext, bucket: Bucket, record_key: bytes) -> None:
    """Remove ``record_key`` from ``bucket``: the last member moves into its slot."""
    assert bucket.family.removable, f"{bucket.family.name} members never leave"
    raw = ctx.get(bucket.reverse_key(record_key))
    assert raw is not None, f"{record_key!r} is not in {bucket.describe()}"
    reverse = decode_trusted(raw)
    assert isinstance(reverse, dict) and isinstance(reverse.get("slot"), int)
    slot: int = reverse["slot"]
    last = head_count(ctx.get(bucket.head_key)) - 1
    if slot != last:
        moved_raw = ctx.get(bucket.slot_key(last))
        assert moved_raw is not None, f"{bucket.describe()} lost slot {last}"
        moved = decode_trusted(moved_raw)
        assert isinstance(moved, dict) and isinstance(moved.get("key"), bytes)
        ctx.writes[bucket.slot_key(slot)] = moved_raw
        ctx.store(bucket.reverse_key(moved["key"]), {"slot": slot})
    ctx.delete(bucket.slot_key(last))
    ctx.delete(bucket.reverse_key(record_key))
    _set_count(ctx, bucket, last)


def file(ctx: TxContext, bucket: Bucket, index_key: bytes, record_key: bytes) -> None:
    """File a record under ``bucket``: the local index entry (fast serving) and the
    proven bucket together, so no handler writes the one and forgets the other."""
    ctx.index_put(index_key, record_key)
    join(ctx, bucket, record_key)


def unfile(ctx: TxContext, bucket: Bucket, index_key: bytes, record_key: bytes) -> None:
    """Take a record out of ``bucket`` and its local index entry."""
    ctx.index_delete(index_key)
    leave(ctx, bucket, record_key)

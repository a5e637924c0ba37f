"""One page of a search, checked complete against the proven search bucket.

A search is answered from a bucket kept in authenticated state
(:mod:`contracts.search_buckets`; docs/formats-state.md §6): a head row with the
member count and one slot row per member. :func:`verify_page` checks a page:

* the bucket is one the client asked about (the keys are computed here from its
  name, never taken from the node);
* the proven head gives the count (proven absent: an empty bucket);
* the page starts at the slot asked for, and its slots follow one another from
  there, each proven under the same state root: none skipped, repeated or
  reordered, no member twice;
* each slot's member record is proven present (the caller then checks it matches
  the search), or the slot is proven with its value withheld (a member the
  reader may not see: counted, not shown).

Whether the page holds *enough* slots is decided with every other wholeness rule
in :func:`lightclient.answers.verify_answer`, from the :class:`PageCount` built
here, as is whether a withheld member was one the reader may read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts.search_buckets import FAMILIES, Bucket
from ledger.block import BlockHeader
from ledger.encoding import Value
from lightclient.answers import PageCount
from lightclient.errors import VerificationError, answer_field
from lightclient.records import verify_item, verify_withheld


@dataclass(frozen=True, slots=True)
class Member:
    """One proven slot: its number, the member's state key and record (None: withheld)."""

    slot: int
    key: bytes | None
    record: dict[str, Value] | None


@dataclass(frozen=True, slots=True)
class Page:
    """A page proven consecutive from its first slot, with the bucket's proven count."""

    bucket: Bucket
    count: PageCount
    members: tuple[Member, ...]

    @property
    def shown(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.record is not None)

    @property
    def withheld(self) -> int:
        return len(self.members) - len(self.shown)


def verify_page(
    answer: Value,
    header: BlockHeader,
    asked: Sequence[Bucket],
    start: int,
    limit: int,
    may_withhold: Callable[[Bucket], bool],
) -> Page:
    """The page in ``answer`` of one of the ``asked`` buckets, from slot ``start``;
    ``may_withhold(bucket)`` says whether the reader may be refused some members."""
    bucket = _bucket_of(answer, asked)
    if answer_field(answer, "start", "the search page") != start:
        raise VerificationError(
            f"the page starts at slot {answer.get('start')!r}, asked from slot {start} "
            "(a page skipped)"
        )
    total = _count(answer_field(answer, "head", "the search page"), header, bucket)
    slots = answer_field(answer, "slots", "the search page")
    if not isinstance(slots, list) or len(slots) > limit:
        raise VerificationError(f"the page holds more than the {limit} slots asked for")
    members: list[Member] = []
    seen: set[bytes] = set()
    for n, entry in enumerate(slots):
        member = _member(entry, header, bucket, start + n)
        if member.key is not None:
            if member.key in seen:
                raise VerificationError(f"{member.key!r} is listed twice in the page")
            seen.add(member.key)
        members.append(member)
    withheld = sum(1 for m in members if m.record is None)
    count = PageCount(
        bucket.describe(), total, start, limit, len(members), withheld, may_withhold(bucket)
    )
    return Page(bucket, count, tuple(members))


def _bucket_of(answer: Value, asked: Sequence[Bucket]) -> Bucket:
    named = answer_field(answer, "bucket", "the search page")
    family = FAMILIES.get(str(named.get("family"))) if isinstance(named, dict) else None
    for bucket in asked:
        if bucket.family == family and bucket.name == named.get("name"):
            return bucket
    raise VerificationError(f"the page is of a bucket the search did not ask about: {named!r}")


def _count(head: Value, header: BlockHeader, bucket: Bucket) -> int:
    value = verify_item(head, header, bucket.head_key)
    if value is None:
        return 0
    count = value.get("count") if isinstance(value, dict) else None
    if not isinstance(count, int) or count < 1:
        raise VerificationError(f"the head of {bucket.describe()} is malformed: {value!r}")
    return count


def _member(entry: Value, header: BlockHeader, bucket: Bucket, n: int) -> Member:
    """Slot ``n``, proven: its member's record, or the slot's value withheld."""
    slot = answer_field(entry, "slot", f"slot {n}")
    key = bucket.slot_key(n)
    if answer_field(slot, "key", f"slot {n}") != key:
        raise VerificationError(
            f"slot {n} of {bucket.describe()} is not where it belongs in the page "
            "(a record left out, or the page reordered)"
        )
    if slot.get("redacted") is True:
        verify_withheld(slot, header, key)
        return Member(n, None, None)
    value = verify_item(slot, header, key)
    record_key = value.get("key") if isinstance(value, dict) else None
    if not isinstance(record_key, bytes):
        raise VerificationError(f"slot {n} of {bucket.describe()} is malformed: {value!r}")
    record = verify_item(answer_field(entry, "member", f"slot {n}"), header, record_key)
    if not isinstance(record, dict):
        raise VerificationError(f"the member of slot {n}, {record_key!r}, is proven absent")
    return Member(n, record_key, record)

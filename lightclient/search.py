"""Searches checked complete: shipments, permits, an account's trades, organisations.

Each answer is one page of a search bucket in state, checked by
:func:`lightclient.completeness.verify_page` (consecutive proven slots from the
slot asked for) and counted by :func:`lightclient.answers.verify_answer` (as
many as the proven count requires). Here each shown member is read as its
record type, must be the record at its own key, must belong to the bucket it
was found in (a status bucket's member has that status …), and is listed when
it matches every filter the user gave (a search with several filters walks
one of their buckets and filters the rest here). Withheld members (records the
reader may not see) are counted, never shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from contracts import search_buckets as sb
from contracts import state_keys as sk
from contracts.energy_records import Trade
from contracts.identity_records import Organisation
from contracts.index_keys import normalise_address
from contracts.permit_records import Permit
from contracts.read_rules import ROLE_READERS, Reader, reader_for
from contracts.shipment_records import Shipment
from contracts.shipment_search import ShipmentFilter, in_bucket, matches_search
from ledger.block import BlockHeader
from ledger.encoding import Value, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from lightclient.answers import PageCount
from lightclient.completeness import Member, Page, verify_page
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import verify_item

R = TypeVar("R", Shipment, Permit, Trade, Organisation)


@dataclass(frozen=True, slots=True)
class SearchView(Generic[R]):
    """One page of a search: the records shown that match every filter, the page."""

    certified: CertifiedHeader
    page: Page
    found: tuple[R, ...]

    def histories(self) -> tuple[PageCount]:
        """The page must hold every slot its bucket's proven count requires."""
        return (self.page.count,)


@dataclass(frozen=True, slots=True)
class Paging:
    """Where a page starts (a slot number) and how many slots it holds at most."""

    start: int = 0
    limit: int = 100


def verify_reader(answer: Value, header: BlockHeader, reader_key: bytes) -> Reader:
    """Who the node answered (the signing key's proven member record, at the answer's
    height): what it may read decides which members the node may withhold from it."""
    key = sk.member_key(reader_key)
    value = verify_item(answer_field(answer, "reader", "the answer"), header, key)
    return reader_for({} if value is None else {key: encode(value)}, reader_key)


def shipment_withholding(reader: Reader) -> Callable[[sb.Bucket], bool]:
    """A shipment page may withhold members only from a reader without a shipment role,
    and never in the reader's own party bucket (it is party to every member)."""
    if not reader.roles.isdisjoint(ROLE_READERS["shipment"]):
        return lambda _bucket: False
    return lambda b: not (b.family == sb.SHIPMENT_PARTY and b.name == reader.org)


def verify_shipment_search(
    answer: Value, genesis: Genesis, search: ShipmentFilter, paging: Paging, reader_key: bytes
) -> SearchView[Shipment]:
    """A page of ``GET /v1/shipments`` signed by ``reader_key``: complete, each shown
    shipment proven, none withheld that the reader may read."""
    return _verify(
        answer,
        genesis,
        search.buckets(),
        paging,
        Shipment,
        in_bucket,
        lambda s: matches_search(s, search),
        lambda header: shipment_withholding(verify_reader(answer, header, reader_key)),
    )


def verify_permit_search(
    answer: Value, genesis: Genesis, holder: str | None, address: str | None, paging: Paging
) -> SearchView[Permit]:
    """A page of ``GET /v1/permits?holder=|address=``: complete, each permit proven."""
    if holder is not None:
        bucket = sb.PERMIT_HOLDER.bucket(holder)
    elif address is not None:
        bucket = sb.PERMIT_ADDRESS.bucket(normalise_address(address))
    else:
        raise ValueError("a permit search needs a holder or an address")

    def in_bucket(_bucket: sb.Bucket, p: Permit) -> bool:
        if holder is not None:
            return p.holder == holder
        return normalise_address(p.address) == bucket.name

    return _verify(answer, genesis, [bucket], paging, Permit, in_bucket, lambda _p: True)


def verify_trades(
    answer: Value, genesis: Genesis, org_id: str, interval: int | None, paging: Paging
) -> SearchView[Trade]:
    """The trades page of ``GET /v1/energy/accounts/{org}``: complete, each trade
    proven one where ``org_id`` sold or bought; ``interval`` filters them here."""
    return _verify(
        answer,
        genesis,
        [sb.TRADE_ACCOUNT.bucket(org_id)],
        paging,
        Trade,
        lambda _b, t: org_id in (t.seller, t.buyer),
        lambda t: interval is None or t.interval_start_ms == interval,
        field="trades",
    )  # its readers (owner, regulator, auditor) read every trade of the account


def verify_org_directory(
    answer: Value, genesis: Genesis, paging: Paging
) -> SearchView[Organisation]:
    """A page of ``GET /v1/orgs``: the organisation directory, complete, each organisation
    proven at its own key (public records: nothing may be withheld). Every organisation
    belongs in it, so the page is listed whole; names are matched by the caller."""
    return _verify(
        answer,
        genesis,
        [sb.ORGANISATIONS],
        paging,
        Organisation,
        lambda _b, _o: True,
        lambda _o: True,
    )


def _verify(
    answer: Value,
    genesis: Genesis,
    buckets: Sequence[sb.Bucket],
    paging: Paging,
    kind: type[R],
    in_bucket: Callable[[sb.Bucket, R], bool],
    wanted: Callable[[R], bool],
    withholding: Callable[[BlockHeader], Callable[[sb.Bucket], bool]] = lambda _h: _never,
    field: str | None = None,
) -> SearchView[R]:
    """The page (the answer itself, or its ``field``) checked complete, its members read;
    ``withholding`` (default: never) says which buckets may withhold members."""
    certified = verify_certified(answer, genesis)
    page_obj = answer if field is None else answer_field(answer, field, "the answer")
    may_withhold = withholding(certified.header)
    page = verify_page(
        page_obj, certified.header, buckets, paging.start, paging.limit, may_withhold
    )
    found: list[R] = []
    for member in page.shown:
        record = _typed(member, kind)
        if not in_bucket(page.bucket, record):
            raise VerificationError(
                f"{member.key!r} is in {page.bucket.describe()} but its proven record "
                "does not belong there"
            )
        if wanted(record):
            found.append(record)
    return SearchView(certified, page, tuple(found))


def _never(_bucket: sb.Bucket) -> bool:
    """Public records and an account's own trades: nothing may be withheld."""
    return False


def _typed(member: Member, kind: type[R]) -> R:
    """The member's proven record as a ``kind`` that lives at the member's key."""
    try:
        record = kind.from_obj(member.record)
    except LedgerError as exc:
        raise VerificationError(
            f"the member of slot {member.slot} is not a {kind.__name__} record: {exc}"
        ) from None
    if record.key != member.key:
        raise VerificationError(
            f"the member of slot {member.slot} is not the {kind.__name__} at its key"
        )
    return record

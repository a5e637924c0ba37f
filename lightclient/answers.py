"""The one place that decides whether a checked answer may be called verified.

Every reader of this package (:func:`lightclient.shipments.verify_shipment`,
:func:`lightclient.permits.verify_permit`, :func:`lightclient.search.verify_search`,
:func:`lightclient.receipts.verify_receipt` …) proves what an answer holds against
a certified header. Whether that is enough to say *verified* is decided here,
once, for every command, by :func:`verify_answer`, the only way to build a
:class:`Verified`:

* **genesis**: the answer is from the chain that started from the user's genesis
  file. A certificate by other validators or for another chain id, or a node
  naming another genesis hash, is a :class:`~lightclient.errors.GenesisMismatch`
  naming both hashes, never a forgery;
* **freshness**: the certified block is no older than the client's limit
  (:class:`Freshness`), or head statements by more than 2/3 of its height's power
  prove it was still the head recently enough (:mod:`lightclient.head`: an idle
  network commits only a heartbeat block now and then), unless the user asked for a
  height or a time, or checks a saved bundle: then the answer says so and how old it is;
* **whole histories**: every record that keeps a history comes with all of it
  (:class:`HistoryCount`: the entries the proven record declares, the entries proven);
* **complete searches**: every page of a search holds every member of the proven
  search bucket from the slot asked for, as many as asked or up to the last
  and withholds nothing from a key that may read it (:class:`PageCount`, built by
  :func:`lightclient.completeness.verify_page`, which has already checked that the
  slots it counts are consecutive and proven, or from a proven record's own list: an
  energy market's book, :mod:`lightclient.energy`).

A view type joins by having a ``certified`` header and a ``histories()`` method
(:class:`Checked`) that yields each history and each search page it holds;
mypy holds every caller of :func:`verify_answer` to that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.errors import GenesisMismatch, VerificationError
from lightclient.head import HeadTime, proven_head_time
from lightclient.headers import CertifiedHeader

# The head statements a node holds for a height (``GET /v1/head?height=``): asked only
# when the answer's block is older than the limit.
HeadSource = Callable[[int], Sequence[Value]]


class StaleAnswer(VerificationError):
    """The answer's certified block is older than the client accepts."""

    code = "stale"

    def __init__(self, message: str, height: int, age_ms: int) -> None:
        super().__init__(message)
        self.height = height
        self.age_ms = age_ms


@dataclass(frozen=True, slots=True)
class HistoryCount:
    """A record's history as proven: the entries its record declares, the entries proven."""

    what: str
    declared: int
    proven: int


@dataclass(frozen=True, slots=True)
class PageCount:
    """One page of a search as proven: the bucket's proven member count ``total``, the
    slot it starts at and the page size asked, and the consecutive slots proven."""

    what: str
    total: int
    start: int
    asked: int
    proven: int
    withheld: int = 0
    may_withhold: bool = True  # False: the reader may read every member (public, own, role)

    @property
    def expected(self) -> int:
        """How many slots the page must hold: as many as asked, or all that are left."""
        return min(self.asked, max(0, self.total - self.start))

    @property
    def next_after(self) -> int | None:
        """The first slot of the next page, None on the last page."""
        end = self.start + self.proven
        return end if end < self.total else None


class Checked(Protocol):
    """A view a reader built: the certified header it is proven against, and the
    histories and search pages it holds (each must be whole)."""

    @property
    def certified(self) -> CertifiedHeader: ...

    def histories(self) -> Iterable[HistoryCount | PageCount]: ...


V = TypeVar("V", bound=Checked)


@dataclass(frozen=True, slots=True)
class Freshness:
    """Which certified blocks the client accepts, and what the user asked for.

    ``max_age_ms`` None accepts any age (the user asked for an old answer, or the
    answer is a saved bundle); ``height`` requires exactly that height;
    ``covers_ms`` also accepts an older block whose time is at or after it (a
    block from after the time asked about holds everything up to that time).
    ``asked`` says in the output why an old answer was accepted.
    """

    now_ms: int
    max_age_ms: int | None
    height: int | None = None
    covers_ms: int | None = None
    asked: str = ""

    @classmethod
    def current(cls, now_ms: int, max_age_ms: int) -> Freshness:
        return cls(now_ms, max_age_ms)

    @classmethod
    def at_height(cls, now_ms: int, height: int, asked: str = "") -> Freshness:
        return cls(now_ms, None, height=height, asked=asked or f"height {height}")

    @classmethod
    def covering(cls, now_ms: int, max_age_ms: int, at_ms: int) -> Freshness:
        return cls(now_ms, max_age_ms, covers_ms=at_ms)

    @classmethod
    def any_age(cls, now_ms: int, asked: str) -> Freshness:
        return cls(now_ms, None, asked=asked)


_SEAL = object()


@dataclass(frozen=True, slots=True)
class Verified(Generic[V]):
    """An answer that passed :func:`verify_answer`: nothing else builds one."""

    view: V
    age_ms: int
    asked: str
    seal: object
    head: HeadTime | None = None  # when head statements proved the age (an idle network)

    def __post_init__(self) -> None:
        if self.seal is not _SEAL:
            raise TypeError("a Verified answer is built only by lightclient.answers.verify_answer")

    @property
    def certified(self) -> CertifiedHeader:
        return self.view.certified

    @property
    def height(self) -> int:
        return self.view.certified.height

    @property
    def time_ms(self) -> int:
        return self.view.certified.header.time_ms


def verify_answer(
    read: Callable[[], V],
    genesis: Genesis,
    node_genesis: bytes | None,
    freshness: Freshness,
    head: HeadSource | None = None,
) -> Verified[V]:
    """``read()``'s view, once its genesis, freshness and histories check out.

    ``node_genesis`` is the genesis hash the node (or the bundle, or the store)
    names for its chain; None when the source names none. ``head``: where to ask for
    head statements when the certified block is older than the limit (None: nowhere).
    """
    try:
        view = read()
    except GenesisMismatch as exc:
        if exc.theirs is None and node_genesis is not None:
            raise exc.naming(node_genesis) from None
        raise
    if node_genesis is not None and node_genesis != genesis.hash:
        raise GenesisMismatch(
            "the node's chain has your chain id and validators, yet started from another genesis",
            genesis.hash,
            node_genesis,
        )
    try:
        age_ms, proven = check_freshness(view.certified, freshness), None
    except StaleAnswer as stale:
        if head is None:
            raise
        proven = fresh_by_statements(view.certified, freshness, genesis, head, stale)
        age_ms = max(0, freshness.now_ms - proven.time_ms)
    for count in view.histories():
        check_whole(count)
    return Verified(view, age_ms, freshness.asked, _SEAL, proven)


def fresh_by_statements(
    certified: CertifiedHeader,
    freshness: Freshness,
    genesis: Genesis,
    head: HeadSource,
    stale: StaleAnswer,
) -> HeadTime:
    """A block older than the limit is still accepted when its head statements prove
    it was the head no longer ago than the limit; else ``stale`` (as it is when the
    node has none), saying why they do not help."""
    statements = head(certified.height)
    if not statements:
        raise stale
    try:
        proven = proven_head_time(statements, certified, genesis)
    except VerificationError as exc:
        raise StaleAnswer(
            f"{stale}; its head statements do not help: {exc}", stale.height, stale.age_ms
        ) from None
    age_ms = max(0, freshness.now_ms - proven.time_ms)
    limit = freshness.max_age_ms
    if limit is not None and age_ms > limit:
        raise StaleAnswer(
            f"{stale}; its head statements prove it the head only {describe_age(age_ms)} ago",
            certified.height,
            age_ms,
        )
    return proven


def check_whole(count: HistoryCount | PageCount) -> None:
    """A history holds every entry its record declares; a search page every slot its
    bucket's proven count requires."""
    if isinstance(count, HistoryCount):
        if count.declared != count.proven:
            raise VerificationError(
                f"{count.what}: the record declares {count.declared} history entries, "
                f"{count.proven} are proven (truncated or emptied history)"
            )
    elif count.proven != count.expected:
        raise VerificationError(
            f"{count.what}: the proven count is {count.total}, so the page from slot "
            f"{count.start} must hold {count.expected}, it holds {count.proven} "
            "(a matching record or a page left out)"
        )
    elif count.withheld and not count.may_withhold:
        raise VerificationError(
            f"{count.what}: the node withheld {count.withheld} record(s) this key may read "
            "(a matching record left out)"
        )


def check_freshness(certified: CertifiedHeader, freshness: Freshness) -> int:
    """The certified block's age in ms, if ``freshness`` accepts it."""
    header = certified.header
    if freshness.height is not None and header.height != freshness.height:
        raise VerificationError(
            f"asked for height {freshness.height}, the node answered for height {header.height}"
        )
    age_ms = max(0, freshness.now_ms - header.time_ms)
    limit = freshness.max_age_ms
    covered = freshness.covers_ms is not None and header.time_ms >= freshness.covers_ms
    if limit is not None and age_ms > limit and not covered:
        raise StaleAnswer(
            f"its certified block, height {header.height}, is {describe_age(age_ms)} old, "
            f"over the limit of {describe_age(limit)}",
            header.height,
            age_ms,
        )
    return age_ms


def describe_age(ms: int) -> str:
    """``850 ms``, ``12 s``, ``5 min 3 s``, ``2 h 4 min``, ``3 d 1 h``."""
    if ms < 1000:
        return f"{ms} ms"
    s = ms // 1000
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60)):
        if s >= size:
            return f"{s // size} {unit} {s % size // sub_size} {sub}"
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"

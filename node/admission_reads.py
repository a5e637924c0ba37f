"""The committed state as the mempool's admission reads it, cached between commits.

Admission reads two things of every transaction's sender from the latest committed
state: its member record (who it is, its roles, whether it is suspended) and its next
nonce. Both are cached here, each bounded: the reads (member records and whatever
else the contract's admission check asks for, absent keys included) up to
:data:`READ_CACHE_BYTES` by an estimate of their memory, and the next nonces of up to
:data:`NONCE_CACHE_SENDERS` senders; a cache over its bound is emptied and fills again.

After a commit (:meth:`AdmissionReads.after_commit`) the reader of the latest state is
taken afresh at the next read, the committed senders' nonces are read again, and the
reads are forgotten if the block held a membership kind (only those write member
records: any other block leaves them as they were).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from contracts.engine import StateReader, next_nonce

NONCE_CACHE_SENDERS = 100_000  # senders' next nonces cached (an int each: ~15 MB at most)
READ_CACHE_BYTES = 16 * 1024 * 1024  # admission's cached state reads (member records)
ENTRY_OVERHEAD = 150  # bytes a cached read costs besides its key and value (dict slot, objects)


class AdmissionReads:
    """The latest committed state for admission: a :class:`StateReader` whose reads are
    cached until a block changes a member record, and senders' next nonces."""

    __slots__ = ("_latest", "_nonces", "_state", "_value_bytes", "_values")

    def __init__(self, state: Callable[[], StateReader]) -> None:
        """``state``: returns a fresh reader of the latest committed state."""
        self._state = state
        self._latest: StateReader | None = None  # reader of the latest state, until a commit
        self._values: dict[bytes, bytes | None] = {}
        self._value_bytes = 0  # their estimated memory, at most READ_CACHE_BYTES
        self._nonces: dict[bytes, int] = {}  # committed next nonce per sender

    @property
    def cached_senders(self) -> int:
        """Senders whose next nonce is cached (at most NONCE_CACHE_SENDERS)."""
        return len(self._nonces)

    @property
    def cached_bytes(self) -> int:
        """Estimated memory of the cached reads (at most READ_CACHE_BYTES)."""
        return self._value_bytes

    def get(self, key: bytes) -> bytes | None:
        if key in self._values:
            return self._values[key]
        value = self._latest_state().get(key)
        cost = ENTRY_OVERHEAD + len(key) + (0 if value is None else len(value))
        if self._value_bytes + cost > READ_CACHE_BYTES:
            self._values.clear()
            self._value_bytes = 0
        self._values[key] = value
        self._value_bytes += cost
        return value

    def next_nonce(self, sender: bytes) -> int:
        """The sender's committed next nonce."""
        nonce = self._nonces.get(sender)
        if nonce is None:
            if len(self._nonces) >= NONCE_CACHE_SENDERS:
                self._nonces.clear()
            nonce = self._nonces[sender] = next_nonce(self._latest_state(), sender)
        return nonce

    def after_commit(self, senders: Iterable[bytes], members_changed: bool) -> None:
        """A block was committed: ``senders`` sent its transactions, and
        ``members_changed`` if it held a membership kind."""
        self._latest = None
        if members_changed:
            self._values.clear()
            self._value_bytes = 0
        for sender in senders:
            self._nonces.pop(sender, None)

    def _latest_state(self) -> StateReader:
        if self._latest is None:
            self._latest = self._state()
        return self._latest

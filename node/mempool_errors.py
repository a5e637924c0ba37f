"""What the mempool answers when it will not take a transaction (node/mempool.py): the
refusal's code and HTTP status, and for a refusal "not now" the seconds to wait."""

from __future__ import annotations

from ledger.errors import LedgerError

SENDER_BACKLOG_RETRY_S = 2.0  # Retry-After of a nonce past the window behind a pending run
DEFAULT_RETRY_S = 1.0  # Retry-After of a 429 that names no wait of its own (mempool_full, …)


class MempoolError(LedgerError):
    """A transaction the mempool will not take; ``http_status`` says how the API answers."""

    def __init__(self, message: str, *, code: str, http_status: int) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status


class RetryLaterError(MempoolError):
    """A refusal for now (429): the same transaction may be taken ``retry_after_s``
    seconds later (the API's ``Retry-After``, and ``Retry-After-Ms`` to the millisecond)."""

    def __init__(self, message: str, *, code: str, retry_after_s: float) -> None:
        super().__init__(message, code=code, http_status=429)
        self.retry_after_s = retry_after_s


def retry_after_of(error: MempoolError) -> float:
    """The seconds a 429 ``error`` asks a client to wait: its own, or
    :data:`DEFAULT_RETRY_S`."""
    return error.retry_after_s if isinstance(error, RetryLaterError) else DEFAULT_RETRY_S


class OverloadedError(RetryLaterError):
    """More than the node can commit within its latency budget: come back after
    ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            "the node holds as many transactions as it can commit within its latency budget; "
            f"retry in {retry_after_s:.2f} s",
            code="overloaded",
            retry_after_s=retry_after_s,
        )


class SenderBacklogError(RetryLaterError):
    """A nonce past the window that is the next after its sender's pending ready run:
    the window moves as that run is committed, so this is "not now", not a wrong nonce
    (409 ``bad_nonce`` would make a client give up the transaction and strand every
    later one)."""

    def __init__(self, nonce: int, expected: int, ready: int, window: int) -> None:
        super().__init__(
            f"nonce {nonce} is more than {window} past the sender's committed next "
            f"nonce {expected}, with {ready} of its transactions pending before it: retry "
            "once some are committed",
            code="sender_backlog",
            retry_after_s=SENDER_BACKLOG_RETRY_S,
        )


class HeldBehindError(RetryLaterError):
    """A transaction after one of its own sender's in the same batch that was refused
    "not now": it is refused with it, by the same code and wait, so that the client
    sends them again together, in nonce order.

    Taken on its own, it would wait behind that nonce's gap, and past the sender's
    gapped limit or nonce window be refused ``too_many_gapped`` or ``bad_nonce`` —
    answers a client does not send again, which stranded every later transaction of
    the sender (docs/performance.md, "Stranded transactions")."""

    def __init__(self, nonce: int, first: MempoolError) -> None:
        super().__init__(
            f"held behind nonce {nonce} of the same sender, refused for now ({first.code}): "
            "send this one again after it",
            code=first.code,
            retry_after_s=retry_after_of(first),
        )

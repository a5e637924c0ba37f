"""Catch-up's serving side: the ``sync_resp`` frame answering a peer's sync request.

A sync request is a few bytes, its answer up to :data:`MAX_RESPONSE_BYTES` (plus one
block). :func:`response_frame` reads the committed blocks one stored block at a time,
with the event loop free in between, and joins the canonical frame from their stored
bytes as they are (no decoding, no re-encoding), with the last one's certificate.
:meth:`node.sync.Syncer.response_frame` calls it; the syncer answers each request in a
task of its own and queues the frame for the peer (:mod:`node.sync`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ledger.encoding import array_header, check_size
from node.chain import ChainStore
from node.wire import SYNC_RESP_TAIL, SyncRequest

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# The canonical sync_resp frame {"b": {"blocks": [...], "tip_cert": c}, "t": "sync_resp"},
# assembled around the stored bytes of the blocks and the certificate.
_RESP_HEAD = b"\x82\xa1b\x82\xa6blocks"
_RESP_CERT = b"\xa8tip_cert"


async def response_frame(
    chain: ChainStore, req: SyncRequest, head: int, alive: Callable[[], bool]
) -> bytes | None:
    """The ``sync_resp`` frame answering ``req``: committed blocks of ``chain`` (whose head
    is ``head``) from ``req.from_height``, at most ``req.max_blocks`` of them and no more
    bytes than :data:`MAX_RESPONSE_BYTES` (but always one), with the last one's certificate.

    Read one stored block at a time, yielding to the event loop in between, and
    joined from the stored bytes as they are. None if ``alive()`` turns false."""
    parts: list[bytes] = []
    size = 0
    last = 0
    for height in range(req.from_height, min(head, req.from_height + req.max_blocks - 1) + 1):
        raw = chain.block_bytes(height)
        if raw is None:
            break
        if parts and size + len(raw) > MAX_RESPONSE_BYTES:
            break
        parts.append(raw)
        size += len(raw)
        last = height
        await asyncio.sleep(0)  # let consensus, peers and the API breathe
        if not alive():
            return None
    cert = chain.certificate(last) if parts else None
    return check_size(
        b"".join(
            (
                _RESP_HEAD,
                array_header(len(parts)),
                *parts,
                _RESP_CERT,
                b"\xc0" if cert is None else cert.encode(),
                SYNC_RESP_TAIL,
            )
        )
    )

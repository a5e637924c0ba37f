"""``/v1/events``: a WebSocket that pushes what was just committed.

The client sends a subscription (JSON text frame, or a canonical msgpack
binary frame with the sender as bytes) and may replace it at any time::

    {"blocks": true, "sender": "<hex public key>", "shipment": "<shipment id>"}

Every field is optional. The server answers ``{"type": "subscribed", ...}``
and then pushes, per committed block: ``{"type": "block", ...}`` (if
``blocks``), ``{"type": "receipt", ...}`` for each transaction of ``sender``,
and ``{"type": "event", ...}`` for each event whose ``shipment`` attribute is
the subscribed id. A subscriber that falls behind loses the oldest blocks and
is told so with ``{"type": "lagged", "dropped": n}``. Frames use the rendering
the upgrade request's ``Accept`` header chose (text JSON or binary msgpack).

Who may see what: block frames (height, hash, time, count) are public. Receipt
and event frames carry confidential content, so subscribing to ``sender`` or
``shipment`` needs an upgrade request signed by an active member (as any signed
read, :mod:`node.api.auth`), and every frame passes the one authorisation point
(:mod:`node.api.disclosure`) for that member, judged again at every block on the
latest state (a member revoked meanwhile gets no more frames). One client (an
address, and a member key) holds at most ``MAX_PER_CLIENT`` subscriptions, so
nobody can take every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from contracts.read_rules import Reader, reader_for
from ledger.encoding import Value, decode
from ledger.errors import LedgerError
from node.api.access import authenticated_reader
from node.api.auth import signature_required
from node.api.context import api_state
from node.api.disclosure import Disclosure
from node.api.errors import APIError
from node.api.render import Format, negotiate, render_body
from node.events import BlockPublished, Subscription
from node.reap import reap
from node.service import Queries

MAX_SUBSCRIBERS = 1024
MAX_PER_CLIENT = 16
MAX_FRAME_BYTES = 16 * 1024
HEARTBEAT_S = 30.0
_FIELDS = frozenset({"blocks", "sender", "shipment"})

log = logging.getLogger("cityledger.api.events")
routes = web.RouteTableDef()


@dataclass(slots=True)
class Filter:
    blocks: bool = False
    sender: bytes | None = None
    shipment: str | None = None

    def to_obj(self) -> dict[str, Value]:
        return {"blocks": self.blocks, "sender": self.sender, "shipment": self.shipment}


@routes.get("/v1/events")
async def events(request: web.Request) -> web.StreamResponse:
    state = api_state(request)
    if len(state.sockets) >= MAX_SUBSCRIBERS:
        raise APIError(429, "too_many_subscribers", "too many open event subscriptions")
    reader, member_key = await authenticated_reader(request)
    clients = [f"address:{state.client(request)}"]
    if member_key is not None:
        clients.append(f"key:{member_key.hex()}")
    if any(state.subscribers[c] >= MAX_PER_CLIENT for c in clients):
        raise APIError(
            429,
            "too_many_subscribers",
            f"this client already holds {MAX_PER_CLIENT} event subscriptions",
        )
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_FRAME_BYTES)
    if not ws.can_prepare(request).ok:
        raise APIError(400, "malformed", "/v1/events expects a WebSocket upgrade")
    await ws.prepare(request)
    fmt = negotiate(request.headers.get("Accept"))
    current = [Filter()]  # replaced whole by each subscription message
    sub = state.node.events.subscribe()
    state.sockets.add(ws)
    state.subscribers.update(clients)
    viewer = Viewer(state.node.queries, member_key, reader)
    pusher = asyncio.create_task(_push(ws, sub, current, fmt, viewer))
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                wanted = parse_subscription(msg.data)
                if (wanted.sender or wanted.shipment) and reader.org is None:
                    raise signature_required("receipts and events")
            except APIError as exc:
                error = {"code": exc.code, "message": exc.message}
                await _send(ws, fmt, {"type": "error", "error": error})
                continue
            current[0] = wanted
            await _send(ws, fmt, {"type": "subscribed", **current[0].to_obj()})
    finally:
        pusher.cancel()
        state.node.events.unsubscribe(sub)
        state.sockets.discard(ws)
        state.subscribers.subtract(clients)
        for client in clients:
            if state.subscribers[client] <= 0:
                del state.subscribers[client]
        await reap(pusher)  # last: a cancellation of this handler is raised from it
    return ws


class Viewer:
    """The subscriber's disclosure, renewed at each block from the latest state."""

    def __init__(self, queries: Queries, member_key: bytes | None, reader: Reader) -> None:
        self.queries = queries
        self.member_key = member_key
        self.reader = reader

    def at(self, event: BlockPublished) -> Disclosure:
        if self.member_key is not None:
            latest = self.queries.state_after(event.block.header)
            self.reader = reader_for(latest, self.member_key)
        return Disclosure(self.reader, self.queries.state_after)


def parse_subscription(data: str | bytes) -> Filter:
    """A subscription from a JSON text frame or a canonical msgpack binary frame."""
    try:
        doc = json.loads(data) if isinstance(data, str) else decode(data)
    except (ValueError, RecursionError, LedgerError):
        raise APIError(400, "malformed", "a subscription is a JSON or msgpack map") from None
    if not isinstance(doc, dict) or not set(doc) <= _FIELDS:
        raise APIError(400, "malformed", f"a subscription is a map with fields {sorted(_FIELDS)}")
    blocks = doc.get("blocks", False)
    if not isinstance(blocks, bool):
        raise APIError(400, "malformed", '"blocks" must be true or false')
    return Filter(blocks, _sender(doc.get("sender")), _shipment(doc.get("shipment")))


def _sender(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if isinstance(value, str) and len(value) == 64:
        with contextlib.suppress(ValueError):
            if value.isascii() and value.isalnum():
                return bytes.fromhex(value)
    raise APIError(400, "malformed", '"sender" must be a 32-byte public key (hex)')


def _shipment(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and 1 <= len(value) <= 64 and value.isprintable():
        return value
    raise APIError(400, "malformed", '"shipment" must be a shipment id')


def frames_for(event: BlockPublished, f: Filter, disclosure: Disclosure) -> list[dict[str, Value]]:
    """What one committed block means for one subscription, as its reader may see it."""
    block = event.block
    out: list[dict[str, Value]] = []
    if f.blocks:
        out.append(
            {
                "type": "block",
                "height": block.height,
                "hash": block.hash,
                "time_ms": block.header.time_ms,
                "tx_count": block.header.tx_count,
            }
        )
    if f.sender is None and f.shipment is None:
        return out
    for tx, receipt in zip(block.txs, event.receipts, strict=False):
        wanted = f.sender is not None and tx.sender == f.sender
        events = [
            e
            for e in receipt.events
            if f.shipment is not None and e.attrs.get("shipment") == f.shipment
        ]
        if not (wanted or events) or not disclosure.may_see(tx, block.header):
            continue
        if wanted:
            out.append(
                {
                    "type": "receipt",
                    "status": "committed" if receipt.ok else "failed",
                    "kind": tx.kind,
                    "nonce": tx.nonce,
                    "receipt": receipt.to_obj(),
                }
            )
        for e in events:
            out.append(
                {
                    "type": "event",
                    "shipment": f.shipment,
                    "height": receipt.height,
                    "tx_hash": receipt.tx_hash,
                    "event": e.to_obj(),
                }
            )
    return out


async def _push(
    ws: web.WebSocketResponse,
    sub: Subscription,
    current: list[Filter],
    fmt: Format,
    viewer: Viewer,
) -> None:
    reported = 0
    try:
        while not ws.closed:
            event = await sub.queue.get()
            if sub.dropped > reported:
                await _send(ws, fmt, {"type": "lagged", "dropped": sub.dropped - reported})
                reported = sub.dropped
            for frame in frames_for(event, current[0], viewer.at(event)):
                await _send(ws, fmt, frame)
    except (ConnectionError, RuntimeError) as exc:
        log.debug("event subscriber went away: %s", exc)
    except Exception:
        log.exception("event push failed; closing the subscription")
        await ws.close()


async def _send(ws: web.WebSocketResponse, fmt: Format, value: dict[str, Value]) -> None:
    body = render_body(value, fmt)
    if fmt is Format.MSGPACK:
        await ws.send_bytes(body)
    else:
        await ws.send_str(body.decode())

"""What every handler needs, kept in one aiohttp ``AppKey``.

Time is injected: ``clock`` returns wall-clock milliseconds (signed reads,
freshness), ``monotonic`` seconds (rate limiting), so tests drive both.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from aiohttp import web

from ledger.encoding import Value
from node.api.answer_cache import AnswerCache
from node.api.client_address import Network, client_address, parse_networks
from node.api.metrics import Metrics
from node.api.ratelimit import RateLimiter
from node.config import APIConfig
from node.handle import NodeHandle
from node.service import Certified
from node.waiting_room import WaitingRoom


@dataclass(eq=False)
class APIState:
    node: NodeHandle
    config: APIConfig
    clock: Callable[[], int]
    metrics: Metrics
    limiter: RateLimiter
    # Called when this node's own store fails a read: the node stops itself.
    on_store_failure: Callable[[str], None] | None = None
    # Submissions that find no room in the latency budget wait here for a commit (or None)
    waiting_room: WaitingRoom | None = None
    sockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)
    # Open event subscriptions per client (address, member key): no client takes every slot.
    subscribers: Counter[str] = field(default_factory=Counter)
    # Rendered answers every unsigned reader gets alike (redacted blocks), bounded in bytes.
    public_answers: AnswerCache = field(default_factory=AnswerCache)

    @property
    def chain_id(self) -> str:
        return self.node.genesis.chain_id

    @property
    def node_key(self) -> bytes:
        """This node's public key: signed reads name it, so they are not valid elsewhere."""
        return self.node.public_key

    def now_ms(self) -> int:
        return int(self.clock())

    @cached_property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return parse_networks(self.config.trusted_proxies)

    def client(self, request: web.Request) -> str:
        """Who ``request`` comes from, for per-client bounds (behind trusted proxies, the
        client they name: :mod:`node.api.client_address`)."""
        return client_address(request, self.trusted_proxies)


API_STATE = web.AppKey("cityledger_api", APIState)


def api_state(request: web.Request) -> APIState:
    return request.app[API_STATE]


def certified_obj(certified: Certified) -> dict[str, Value]:
    """The header and certificate a client checks every answer against."""
    return {
        "height": certified.header.height,
        "header": certified.header.to_obj(),
        "certificate": certified.cert.to_obj(),
    }

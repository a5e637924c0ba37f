"""A running node's two listeners: the HTTP API (TLS where ``[api] tls``) and the p2p
endpoint the validators link to (TLS 1.3 where ``[p2p] tls``), both with the TLS
handshake deadline, the p2p one also with the cap on handshakes in progress."""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web

from node.api.app import make_app
from node.api.metrics import Metrics
from node.config import NodeConfig
from node.handle import NodeHandle
from node.listen import PendingCount, start_site
from node.peers import PeerManager
from node.tls import LinkTLS
from node.waiting_room import WaitingRoom

log = logging.getLogger("cityledger.node")


class Listening(NodeHandle, Protocol):
    """What the listeners read of the node (:class:`node.runtime.Node`) besides the
    face it shows its API."""

    config: NodeConfig
    peers: PeerManager
    link_tls: LinkTLS | None
    metrics: Metrics
    waiting_room: WaitingRoom

    def store_failed(self, message: str) -> None: ...


async def start_sites(node: Listening) -> tuple[web.AppRunner, web.AppRunner]:
    """The API and the p2p listener, started (logged once both are up)."""
    config = node.config
    tls = node.peers.tls
    deadline_s = config.p2p.handshake_timeout_ms / 1000
    api_tls = node.link_tls.api if config.api.tls and node.link_tls is not None else None
    api = await start_site(
        make_app(
            node,
            config.api,
            metrics=node.metrics,
            on_store_failure=node.store_failed,
            waiting_room=node.waiting_room,
        ),
        config.api.listen,
        ssl_context=api_tls,
        handshake_timeout_s=deadline_s,
    )
    p2p_app = web.Application(client_max_size=config.p2p.max_frame_bytes)
    p2p_app.router.add_get("/p2p", node.peers.handle)
    p2p = await start_site(
        p2p_app,
        config.p2p.listen,
        ssl_context=None if tls is None else tls.server,
        handshake_timeout_s=deadline_s,
        # connections still in the TLS handshake, counted apart from node.peers.pending
        tls_pending=PendingCount(
            config.p2p.max_pending_handshakes, config.p2p.max_pending_per_address
        ),
    )
    log.info(
        "node %s: API on %s://%s, p2p on %s (%s), height %d",
        config.name,
        "http" if api_tls is None else "https",
        config.api.listen,
        config.p2p.listen,
        "plaintext" if tls is None else "TLS 1.3",
        node.chain.head().height,
    )
    return api, p2p

"""``node start --state-sync``: before the node proper opens its home, fill an empty
store from a peer's snapshot (:mod:`node.statesync`), answering ``GET /v1/status`` with
the progress meanwhile."""

from __future__ import annotations

import logging

from aiohttp import web

from ledger.genesis import Genesis
from ledger.keyfile import read_key_file
from ledger.storage import open_leveldb
from node.chain import ChainStore
from node.config import Home, NodeConfig
from node.listen import start_site
from node.statesync import Progress, state_sync
from node.statesync_check import unfinished, wipe
from node.tls import LinkTLS, ensure_identity
from node.validator_peers import allowed_peers

log = logging.getLogger("cityledger.node")


async def join_by_state_sync(home_path: str, passphrase: str | None) -> Progress | None:
    """Fill an empty store from a peer's snapshot; a store that already holds blocks
    starts from them. While it runs, ``GET /v1/status`` answers with its progress
    (plain-HTTP APIs only)."""
    home = Home(home_path)
    config = home.load_config()
    genesis = Genesis.load(home.genesis)
    key = read_key_file(home.key, passphrase)
    link_tls = None
    if config.p2p.tls:
        if ensure_identity(home.tls_key, home.tls_cert, key):
            log.warning("created a TLS key for peer links: %s and %s", home.tls_key, home.tls_cert)
        names = allowed_peers(genesis, config)
        link_tls = LinkTLS.from_files(key, names, home.tls_key, home.tls_cert)
    store = open_leveldb(home.data)
    progress: list[Progress] = []
    site = None if config.api.tls else await _progress_site(config, progress)
    try:
        head = ChainStore(store, genesis).head().height
        if head > 0:
            log.info("--state-sync: the store already holds height %d; starting from it", head)
            return None
        if unfinished(store) is not None:
            log.warning("--state-sync: an unfinished state sync is deleted and started again")
        wipe(store)  # at most the genesis state, or a partial state sync
        await state_sync(
            config,
            genesis,
            key,
            store,
            link_tls=link_tls,
            names=allowed_peers(genesis, config),
            on_progress=progress.append,
        )
        return progress[0] if progress else None
    finally:
        store.close()
        if site is not None:
            await site.cleanup()


async def _progress_site(config: NodeConfig, progress: list[Progress]) -> web.AppRunner:
    """The API address, answering only ``/v1/status`` (the state sync's progress) and
    ``/healthz`` until the node proper starts."""

    async def status(_: web.Request) -> web.StreamResponse:
        doc = (
            {"node": config.name, "height": 0, "state_sync": progress[0].to_obj()}
            if progress
            else {}
        )
        return web.json_response(doc)

    async def healthz(_: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="state sync under way")

    app = web.Application()
    app.router.add_get("/v1/status", status)
    app.router.add_get("/healthz", healthz)
    return await start_site(app, config.api.listen)

"""One node process: open a node home (config, genesis, key, store, signer state),
run the node until SIGINT or SIGTERM, answer SIGHUP (reload the links' files and the
next key) and the backup signal, and reopen the node in this process after a key
rotation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.keyfile import read_key_file
from ledger.storage import open_leveldb
from ledger.storage.leveldb import LevelDBStore
from node.backup import BACKUP_SIGNAL, BackupWorker
from node.collector import settle_after_start
from node.config import ConfigError, Home, NodeConfig, plaintext_problem
from node.membership import reload_links
from node.rotation import finish_interrupted, read_next_key, switch
from node.runtime import Node
from node.statesync import Progress
from node.statesync_check import refuse_unfinished
from node.statesync_join import join_by_state_sync
from node.sync import LocalStoreFault
from node.tls import LinkTLS, ensure_identity
from node.validator_peers import allowed_peers

log = logging.getLogger("cityledger.node")


def open_node(
    home_path: str, *, passphrase: str | None = None, reset_signer_state: bool = False
) -> Node:
    """Load a node home (config, genesis, key, store, signer state) into a :class:`Node`."""
    home = Home(home_path)
    config = home.load_config()
    problem = plaintext_problem(config)
    if problem is not None:
        raise ConfigError(problem)
    genesis = Genesis.load(home.genesis)
    key = read_key_file(home.key, passphrase)
    finish_interrupted(home, key)  # a key switch a power cut stopped (node.rotation)
    next_key = read_next_key(home, passphrase)
    link_tls = link_tls_of(home, key, genesis, config) if config.p2p.tls or config.api.tls else None
    store = open_leveldb(
        home.data,
        block_cache_mb=config.storage.block_cache_mb,
        write_buffer_mb=config.storage.write_buffer_mb,
        compress=config.storage.compress,
        table_file_mb=config.storage.table_file_mb,
    )
    try:
        refuse_unfinished(store, home.path)
        return Node(
            config,
            genesis,
            key,
            store,
            signer_state=home.signer_state,
            reset_signer_state=reset_signer_state,
            link_tls=link_tls,
            next_key=next_key,
            snapshot_dir=home.snapshots,
        )
    except BaseException:
        store.close()
        raise


def link_tls_of(home: Home, key: PrivateKey, genesis: Genesis, config: NodeConfig) -> LinkTLS:
    """The home's TLS key and certificate (created, and said so, where missing)."""
    if ensure_identity(home.tls_key, home.tls_cert, key):
        log.warning("created a TLS key for peer links: %s and %s", home.tls_key, home.tls_cert)
    return LinkTLS.from_files(key, allowed_peers(genesis, config), home.tls_key, home.tls_cert)


def _reload(node: Node, home: Home, passphrase: str | None) -> None:
    """SIGHUP: the links' files and observers, and the key waiting for a rotation."""
    reload_links(node, home)
    try:
        node.next_key = read_next_key(home, passphrase)
    except (LedgerError, OSError) as exc:  # a bad file must not stop a running node
        log.error("the next key was not read (%s): no key rotation until it is", exc)
        return
    if node.next_key is not None:
        log.info(
            "next consensus key %s… read: the node switches to it once the "
            "validator set hands it this node's seat",
            node.next_key.public_key.hex()[:16],
        )


async def serve(
    home_path: str,
    *,
    passphrase: str | None = None,
    reset_signer_state: bool = False,
    state_sync: bool = False,
) -> None:
    """Run the node at ``home_path`` until SIGINT or SIGTERM; raise
    :class:`LocalStoreFault` if it stopped itself because its store is damaged. A node
    that stopped itself for a key rotation (:mod:`node.rotation`) is switched to its new
    key and opened again, in this process."""
    signalled = asyncio.Event()  # SIGINT/SIGTERM: no life after this one
    synced = await join_by_state_sync(home_path, passphrase) if state_sync else None
    while True:
        node = await _serve_once(home_path, passphrase, reset_signer_state, signalled, synced)
        if not node.rotating or node.next_key is None or signalled.is_set():
            return
        aside = switch(Home(home_path), node.key, node.next_key)
        log.info("the old key and its signer state are kept in %s", aside)
        reset_signer_state = False  # the new key's state is its own, fresh from rotate-key


async def _serve_once(
    home_path: str,
    passphrase: str | None,
    reset_signer_state: bool,
    signalled: asyncio.Event,
    synced: Progress | None = None,
) -> Node:
    """One life of a node, from opening its home to closing its store."""
    node = open_node(home_path, passphrase=passphrase, reset_signer_state=reset_signer_state)
    node.state_synced = synced
    home = Home(home_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_for_good() -> None:
        signalled.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_for_good)
    # `node rotate-tls-key` wrote new TLS files; `devnet join` added an observer;
    # `node rotate-key` wrote the next consensus key
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(node, home, passphrase))
    backups = BackupWorker(node.store, home) if isinstance(node.store, LevelDBStore) else None
    if backups is not None:  # `cityledger node backup` asked through the home
        loop.add_signal_handler(BACKUP_SIGNAL, backups.requested)
    with open(home.pid, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    settle_after_start()
    ran = False
    try:
        await node.run(stop)
        ran = True
    finally:
        if backups is not None:
            await backups.finish()
        node.chain.store.close()  # what is written behind first, then the store
        with contextlib.suppress(FileNotFoundError):
            os.unlink(home.pid)
        if ran and node.fatal is None and not node.rotating:
            log.info("node stopped cleanly")
    if node.fatal is not None:
        raise LocalStoreFault("the node stopped: its local store is damaged (see the log)")
    return node

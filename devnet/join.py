"""``cityledger devnet join``: a new node with its own fresh key joins a running devnet as
a non-validator (an observer), catches up and keeps running — what a city that joins
later does before the founding agencies vote its validator in (docs/operations.md,
"Joining a running network").

The node gets the next free slot of the devnet's ports, the devnet's genesis and every
existing node as a peer. Each existing node lists the new key in ``[p2p] observers`` of
its ``config.toml`` and is sent SIGHUP, which makes a running node read its observers
again (node/membership.py): no node restarts. Once a governance change adds the key to
the validator set, the nodes let it in as a validator by themselves.
"""

from __future__ import annotations

import os
import shutil
import signal

from devnet import layout, processes
from devnet.layout import DevnetError, Network, NodeEntry
from devnet.ports import check_free, wanted_addresses
from ledger.crypto import PrivateKey
from ledger.keyfile import make_private_dir, write_key_file
from ledger.storage import open_leveldb
from node.config import APIConfig, Home, NodeConfig, P2PConfig
from node.tls import ensure_identity


def join(
    network: Network,
    name: str,
    home: str | None = None,
    *,
    state_sync: bool = False,
    start: bool = True,
) -> NodeEntry:
    """Lay out, announce and start a new observer node; returns its entry (saved).
    ``state_sync``: it starts from a peer's snapshot instead of replaying every block;
    ``start=False``: laid out and announced only (a test harness starts it its own way)."""
    if any(n.name == name for n in network.nodes):
        raise DevnetError(f"the devnet already has a node named {name!r}")
    base_port = int(network.nodes[0].p2p.rsplit(":", 1)[1])
    p2p, api = layout.node_addresses(len(network.nodes), base_port)
    check_free(wanted_addresses([(name, p2p, api)]), network.genesis_hash(), processes.status_at)
    node_home = Home(os.path.abspath(home or os.path.join(network.home, name)))
    if os.path.exists(node_home.path):
        raise DevnetError(f"{node_home.path} already exists")
    key = PrivateKey.generate()
    _lay_out(network, node_home, key, name, p2p, api)
    for entry in network.nodes:
        _announce(entry, key.public_key)
    entry = NodeEntry(name, node_home.path, p2p, api)
    if start:
        processes.start_node(entry, state_sync=state_sync)
    network.nodes.append(entry)
    network.save()
    return entry


def _lay_out(network: Network, home: Home, key: PrivateKey, name: str, p2p: str, api: str) -> None:
    make_private_dir(home.path)
    write_key_file(home.key, key)
    ensure_identity(home.tls_key, home.tls_cert, key)
    open_leveldb(home.data, create=True).close()
    shutil.copyfile(Home(network.nodes[0].home).genesis, home.genesis)
    peers = [n.p2p for n in network.nodes]
    config = NodeConfig(
        name=name, p2p=P2PConfig(listen=p2p, peers=peers), api=APIConfig(listen=api)
    )
    with open(home.config, "w", encoding="utf-8") as f:
        f.write(config.to_toml())


def _announce(entry: NodeEntry, public_key: bytes) -> None:
    """Add ``public_key`` to the node's observers; a running node rereads them (SIGHUP)."""
    Home(entry.home).add_observer(public_key)
    if processes.is_running(entry.pid):
        assert entry.pid is not None
        os.kill(entry.pid, signal.SIGHUP)

"""``cityledger node init|init-store|start|allow-observer|…``: run one node."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal

import click

from cli.genesis_cmd import checked_genesis_file
from cli.options import existing_file_option
from cli.output import console, fail, print_json
from cli.passphrase import passphrase_for
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.keyfile import (
    KEY_FILE_MODE,
    copy_key_file,
    exposed,
    is_encrypted,
    make_private_dir,
    read_key_file,
)
from ledger.storage import open_leveldb
from node.config import APIConfig, Home, NodeConfig, P2PConfig, is_loopback
from node.link_identity import fingerprint
from node.rotation import next_key_path, prepare
from node.tls import ensure_identity, read_identity, rotate_tls_key


@click.group()
def node() -> None:
    """Initialise and run a validator node."""


@node.command()
@click.option("--home", required=True, type=click.Path(file_okay=False), help="Node directory.")
@existing_file_option(
    "--genesis", "genesis_path", required=True, help_text="The chain's genesis.json."
)
@existing_file_option(
    "--key",
    "key_path",
    required=True,
    help_text="This node's key file (from `cityledger keys new`).",
)
@click.option("--name", default=None, help="Display name (default: the validator's name).")
@click.option("--p2p", default="127.0.0.1:26656", show_default=True, help="Peer listen address.")
@click.option("--api", default="127.0.0.1:8080", show_default=True, help="API listen address.")
@click.option(
    "--peer",
    "peers",
    multiple=True,
    help="host:port of another validator (repeat). Default: the genesis file's peers.",
)
def init(
    home: str,
    genesis_path: str,
    key_path: str,
    name: str | None,
    p2p: str,
    api: str,
    peers: tuple[str, ...],
) -> None:
    """Create a node home: config.toml, genesis.json, node_key.json."""
    h = Home(home)
    if os.path.exists(h.config):
        fail(f"{h.config} already exists; this home is initialised")
    if _holds_another_key(key_path, h.key):
        fail(f"{h.key} already exists and holds another key; refusing to overwrite it")
    founding = checked_genesis_file(genesis_path)  # signed by every founder, could run
    genesis = founding.genesis
    key = read_key_file(key_path, passphrase_for(key_path))
    validator = genesis.validators.get(key.public_key)
    if validator is None:
        console.print(
            "[yellow]note:[/] this key is not a validator in genesis; the node will "
            "follow the chain as an observer"
        )
    was = make_private_dir(h.path)  # the key, the store and the signer state: owner only
    if was is not None:
        console.print(f"[yellow]note:[/] {h.path} was mode {was:o}; it is now 0700")
    if not _same_file(genesis_path, h.genesis):  # saved into the home already: keep it
        shutil.copyfile(genesis_path, h.genesis)
    _install_key(key_path, h.key)
    ensure_identity(h.tls_key, h.tls_cert, key)  # the TLS key of its peer links
    if not peers:  # the founding validators' addresses from their join requests
        peers = tuple(p.p2p for p in founding.peers if p.public_key != key.public_key)
    config = NodeConfig(
        name=name or (validator.name if validator else "observer"),
        p2p=P2PConfig(listen=p2p, peers=list(peers)),
        api=APIConfig(listen=api),
    )
    with open(h.config, "w", encoding="utf-8") as f:
        f.write(config.to_toml())
    if not os.path.exists(h.data):
        open_leveldb(h.data, create=True).close()
    console.print(
        f"initialised {h.path} for chain [bold]{genesis.chain_id}[/]; "
        f"start it with: cityledger node start --home {h.path}"
    )


def _same_file(a: str, b: str) -> bool:
    return os.path.exists(b) and os.path.samefile(a, b)


def _holds_another_key(source: str, dest: str) -> bool:
    if not os.path.lexists(dest):
        return False
    with open(source, "rb") as a, open(dest, "rb") as b:
        return a.read() != b.read()


def _install_key(source: str, dest: str) -> None:
    """The node's copy of its key, created mode 0600 (never copied, then chmodded). A
    home that already holds this very key (a re-run init) keeps it, made 0600."""
    if os.path.lexists(dest):
        if exposed(dest) is not None:
            os.chmod(dest, KEY_FILE_MODE)
        return
    copy_key_file(source, dest)


@node.command("init-store")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
def init_store(home: str) -> None:
    """Create an empty store in an initialised home whose data directory is gone
    (the node then rebuilds the chain from its peers)."""
    h = Home(home)
    h.load_config()
    if os.path.exists(h.data) and os.listdir(h.data):
        fail(f"{h.data} is not empty: move it aside (or delete it) first")
    open_leveldb(h.data, create=True).close()
    console.print(f"created an empty store in {h.data}; the node will rebuild it from its peers")


@node.command()
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--reset-signer-state",
    is_flag=True,
    help="Start a validator whose signer_state.msgpack is missing or damaged with a fresh "
    "one (the old file is kept aside). Only if this key has not signed anywhere since "
    "that state was written: see docs/operations.md.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A file (mode 0600) holding node_key.json's passphrase. Also: "
    "CITYLEDGER_KEY_PASSPHRASE_FILE, a systemd credential cityledger-key-passphrase.",
)
@click.option(
    "--state-sync",
    is_flag=True,
    help="An empty node fetches the state of a recent height from its peers' snapshots, "
    "checked from genesis, then catches up the blocks after it (docs/operations.md, "
    '"Joining by state sync"). A node that already holds blocks starts from them.',
)
def start(
    home: str, reset_signer_state: bool, passphrase_file: str | None, state_sync: bool
) -> None:
    """Run the node in the foreground until Ctrl-C / SIGTERM."""
    from node.process import serve

    h = Home(home)
    config = h.load_config()
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _warn_if_open_to_others(h)
    if checked_genesis_file(h.genesis).genesis.devnet and not is_loopback(config.p2p.listen):
        logging.getLogger("cityledger.node").warning(
            "this is a devnet genesis, listening beyond loopback: its member keys can be "
            "derived from the source; never keep real records on it (docs/operations.md, "
            '"Founding a network")'
        )
    passphrase = passphrase_for(h.key, passphrase_file)
    try:
        import uvloop
    except ImportError:  # not on this platform: the standard loop works, just slower
        asyncio.run(
            serve(
                home,
                passphrase=passphrase,
                reset_signer_state=reset_signer_state,
                state_sync=state_sync,
            )
        )
    else:
        uvloop.run(
            serve(
                home,
                passphrase=passphrase,
                reset_signer_state=reset_signer_state,
                state_sync=state_sync,
            )
        )


def _warn_if_open_to_others(h: Home) -> None:
    """One warning (the node still starts) for a home whose key or store others can read."""
    loose = h.open_to_others()
    if loose:
        logging.getLogger("cityledger.node").warning(
            "%s open to group/others: the key and every confidential record are readable by "
            "other users; run chmod 700 on the directories and chmod 600 on the key "
            '(docs/operations.md, "What to protect")',
            ", ".join(f"{path} (mode {mode:o})" for path, mode in loose),
        )


@node.command("rotate-tls-key")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
def rotate_tls_key_cmd(home: str) -> None:
    """Replace the TLS key of the node's peer links (and its API's HTTPS) with a new one.

    Nobody else needs to know: peers check the new certificate against the node's
    validator key. A running node is sent SIGHUP and uses the new key for new links;
    open links keep the old one until they close."""
    h = Home(home)
    h.load_config()
    key = read_key_file(h.key, passphrase_for(h.key))
    new = rotate_tls_key(h.tls_key, h.tls_cert, key)
    console.print(f"wrote a new TLS key and certificate in {h.path}:")
    click.echo(f"sha256:{new.hex()}")
    _hup(h, "new links use the new key", "it uses the new key when it starts")


@node.command("allow-observer")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
@click.argument("public_key", metavar="PUBLIC_KEY")
def allow_observer_cmd(home: str, public_key: str) -> None:
    """Let the node with PUBLIC_KEY (hex) link with this one and follow the chain without
    voting: a city that joins later, before the vote that makes it a validator. A
    running node is sent SIGHUP and lets it in at once."""
    h = Home(home)
    try:
        raw = bytes.fromhex(public_key)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        fail(f"{public_key[:80]!r} is not a public key (64 hex characters)")
    added = h.add_observer(raw)
    where = f"[p2p] observers of {h.config}"
    said = f"{'added to' if added else 'already in'} {where}: {raw.hex()}"
    console.print(said, soft_wrap=True, markup=False, highlight=False)  # "[p2p]" is no markup
    _hup(h, "the observer may link now", "it lets the observer in when it starts")


@node.command("rotate-key")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rotate_key_cmd(home: str, as_json: bool) -> None:
    """Make the node's next consensus key (step 1 of a key rotation, docs/operations.md).

    Writes next_node_key.json (sealed with the current key's passphrase if that one is)
    and the new key's own, empty signer state, and prints the public key. Then the
    founding agencies vote `gov propose validator-rotate`; once it is in force the
    running node switches to the new key by itself. Nothing changes until then."""
    h = Home(home)
    h.load_config()
    passphrase = passphrase_for(h.key) if is_encrypted(h.key) else None
    current = read_key_file(h.key, passphrase)
    try:
        new = prepare(h, Genesis.load(h.genesis).chain_id, passphrase)
    except LedgerError as exc:
        fail(str(exc))
    path = next_key_path(h)
    pid = _running_node(h)
    if pid is not None:  # it reads the next key again on SIGHUP
        os.kill(pid, signal.SIGHUP)
    if as_json:
        print_json(
            {
                "public_key": new.public_key.hex(),
                "key_file": path,
                "current_public_key": current.public_key.hex(),
            }
        )
        return
    console.print(f"wrote the next key to {path}; its public key:")
    click.echo(new.public_key.hex())
    console.print(
        "next: the founding agencies vote it in (the node keeps its key until then):\n"
        f"  cityledger gov propose validator-rotate --public-key {current.public_key.hex()} "
        f"--new-key {path} --node URL --key ADMIN_KEY\n"
        "once it is in force the running node switches to it by itself"
        + ("" if pid is None else f" (sent SIGHUP to the node, pid {pid}: it has read the key)")
    )


@node.command("tls-fingerprint")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
def tls_fingerprint_cmd(home: str) -> None:
    """Print the SHA-256 fingerprint of the node's TLS certificate (what API clients
    pin with ``--pin``)."""
    h = Home(home)
    key = read_key_file(h.key, passphrase_for(h.key))
    _, der = read_identity(h.tls_key, h.tls_cert, key)
    click.echo(f"sha256:{fingerprint(der).hex()}")


def _hup(h: Home, now: str, later: str) -> None:
    """SIGHUP to the home's running node, which rereads its TLS key and observers
    (node/membership.py); or say that it reads them when it starts."""
    pid = _running_node(h)
    if pid is None:
        console.print(f"the node is not running: {later}")
        return
    os.kill(pid, signal.SIGHUP)
    console.print(f"sent SIGHUP to the node (pid {pid}): {now}")


def _running_node(h: Home) -> int | None:
    """The pid in the home's node.pid, if that process is a running node (a stale pid
    reused by another program is not signalled)."""
    try:
        with open(h.pid, encoding="ascii") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read()
    except (OSError, ValueError):
        return None
    return pid if b"node\x00start\x00" in command else None

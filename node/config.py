"""A node's home directory and its TOML configuration.

Layout of ``--home DIR`` (mode 0700, like ``data/``: docs/operations.md, "What to protect")::

    config.toml      listen addresses, peers, limits (this module)
    genesis.json     the chain's genesis document
    node_key.json    the node's Ed25519 key (mode 0600)
    tls_key.pem      the key of its peer links' TLS, separate from node_key.json (mode 0600)
    tls_cert.pem     its certificate, issued by the node's key (node.link_identity)
    signer_state.msgpack  a validator's double-sign guard (node.consensus.signer_state); kept
                     outside data/ so that emptying a damaged store does not erase it
    data/            the LevelDB store (locked while the node runs)
    snapshots/       state snapshots this node serves to nodes joining by state sync
    node.pid         pid of the running node (informational; the lock is LevelDB's)
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from typing import Any

from ledger.errors import LedgerError
from ledger.keyfile import exposed
from ledger.storage import (
    DEFAULT_BLOCK_CACHE_MB,
    DEFAULT_COMPRESS,
    DEFAULT_TABLE_FILE_MB,
    DEFAULT_WRITE_BUFFER_MB,
)
from node.api.client_address import MAX_TRUSTED, parse_networks


class ConfigError(LedgerError):
    code = "config"


DEFAULT_COMPACTION_NICE = 10  # [storage] compaction_nice (node/storage_priority.py)
DEFAULT_HEAP_TRIM_S = 10  # [storage] heap_trim_s (node/heap_trim.py)
MAX_PEERS = 1024  # addresses in [p2p] peers, keys in [p2p] observers
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
Check = Callable[[Any], str | None]  # a setting's value -> what is wrong with it, or None


def _range(lo: int, hi: int) -> dict[str, tuple[int, int]]:
    """Field metadata: the setting must lie in [lo, hi] (checked by :func:`_fill`)."""
    return {"range": (lo, hi)}


def _check(check: Check) -> dict[str, Check]:
    """Field metadata for a setting that is not a number: ``check(value)`` says what is
    wrong with it, or None (checked by :func:`_fill`)."""
    return {"check": check}


def _address_problem(address: str) -> str | None:
    try:
        split_host_port(address)
    except ConfigError as exc:
        return exc.message
    return None


def _address(value: str) -> str | None:
    problem = _address_problem(value)
    return None if problem is None else f"must be host:port ({problem})"


def _addresses(value: list[Any]) -> str | None:
    if len(value) > MAX_PEERS:
        return f"must list at most {MAX_PEERS} addresses, not {len(value)}"
    for item in value:
        problem = _address_problem(item) if isinstance(item, str) else "not a string"
        if problem is not None:
            return f"must list host:port addresses ({problem})"
    return None


def _public_keys(value: list[Any]) -> str | None:
    if len(value) > MAX_PEERS:
        return f"must list at most {MAX_PEERS} keys, not {len(value)}"
    for item in value:
        if not (isinstance(item, str) and len(item) == 64 and _is_hex(item)):
            return f"must list public keys as 64 hex digits, not {item!r}"
    return None


def _networks(value: list[Any]) -> str | None:
    if len(value) > MAX_TRUSTED:
        return f"must list at most {MAX_TRUSTED} addresses or networks, not {len(value)}"
    if not all(isinstance(item, str) for item in value):
        return "must list IP addresses or networks as strings"
    try:
        parse_networks(value)
    except ValueError as exc:
        return f"must list IP addresses or networks ({exc})"
    return None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _name(value: str) -> str | None:
    if not 1 <= len(value) <= 128 or not value.isprintable():
        return "must be 1 to 128 printable characters"
    return None


def _flag(value: bool) -> str | None:
    """A switch: :func:`_fill` has already made sure it is a boolean, all it can be."""
    return None


def _log_level(value: str) -> str | None:
    if value.lower() not in LOG_LEVELS:
        return f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}"
    return None


@dataclass(slots=True)
class P2PConfig:
    listen: str = field(default="127.0.0.1:26656", metadata=_check(_address))
    # "host:port" of other validators
    peers: list[str] = field(default_factory=list, metadata=_check(_addresses))
    # hex keys allowed besides validators
    observers: list[str] = field(default_factory=list, metadata=_check(_public_keys))
    max_frame_bytes: int = field(default=16 * 1024 * 1024, metadata=_range(1 << 20, 1 << 30))
    # frames queued per peer
    send_queue: int = field(default=4096, metadata=_range(16, 1_000_000))
    # bytes queued per peer; a frame that does not fit is dropped (node/peers.py)
    send_queue_bytes: int = field(default=32 * 1024 * 1024, metadata=_range(1 << 20, 1 << 32))
    reconnect_min_ms: int = field(default=200, metadata=_range(10, 60_000))
    reconnect_max_ms: int = field(default=5000, metadata=_range(10, 3_600_000))
    # a peer whose score falls to this is disconnected and banned (node/peers.py)
    ban_threshold: int = field(default=-50, metadata=_range(-1_000_000_000, -1))
    # the first ban's length; each further one of the same key doubles, up to ban_max_ms
    ban_min_ms: int = field(default=10_000, metadata=_range(100, 86_400_000))
    ban_max_ms: int = field(default=600_000, metadata=_range(100, 86_400_000))
    # mutual TLS 1.3 on every link (node/tls.py); false is refused off loopback
    tls: bool = field(default=True, metadata=_check(_flag))
    # before a peer is authenticated (node/peers.py): how long its handshake may take,
    # how many links may be in the handshake at once, and how many from one address
    handshake_timeout_ms: int = field(default=5000, metadata=_range(200, 60_000))
    max_pending_handshakes: int = field(default=64, metadata=_range(1, 10_000))
    max_pending_per_address: int = field(default=8, metadata=_range(1, 10_000))


@dataclass(slots=True)
class APIConfig:
    listen: str = field(default="127.0.0.1:8080", metadata=_check(_address))
    max_body_bytes: int = field(default=8 * 1024 * 1024, metadata=_range(1024, 1 << 30))
    # per client address, token bucket
    rate_limit_per_s: float = field(default=2000.0, metadata=_range(1, 10_000_000))
    rate_limit_burst: int = field(default=4000, metadata=_range(1, 10_000_000))
    # signed reads expire after this
    request_max_age_ms: int = field(default=30_000, metadata=_range(1000, 86_400_000))
    # POST /v1/txs is also charged per transaction and per byte (per client address)
    tx_rate_limit_per_s: float = field(default=2000.0, metadata=_range(1, 10_000_000))
    tx_rate_limit_burst: int = field(default=10_000, metadata=_range(1, 10_000_000))
    byte_rate_limit_per_s: float = field(default=8 * 1024 * 1024.0, metadata=_range(1024, 1 << 40))
    byte_rate_limit_burst: int = field(default=16 * 1024 * 1024, metadata=_range(1024, 1 << 40))
    # most transactions in a batch whose request is not signed by an active member
    unsigned_batch_max: int = field(default=2000, metadata=_range(1, 10_000))
    # HTTPS with the node's TLS certificate (tls_cert.pem); plaintext only on loopback
    tls: bool = field(default=False, metadata=_check(_flag))
    # reverse proxies (addresses or networks) whose X-Forwarded-For names the client
    # that per-client bounds count (node/api/client_address.py); none by default
    trusted_proxies: list[str] = field(default_factory=list, metadata=_check(_networks))


@dataclass(slots=True)
class MempoolConfig:
    max_txs: int = field(default=50_000, metadata=_range(1, 10_000_000))
    gossip_interval_ms: int = field(default=20, metadata=_range(1, 10_000))
    # pinning limits (node/mempool.py): future-nonce transactions per sender (at most the
    # nonce window, 256), pending transactions per organisation, and how long one may wait
    max_gapped_per_sender: int = field(default=128, metadata=_range(0, 256))
    max_pending_per_org: int = field(default=10_000, metadata=_range(1, 10_000_000))
    pending_ttl_s: int = field(default=300, metadata=_range(1, 86_400))
    # clients may add only what the node commits within this long at its measured commit
    # rate (node/latency_budget.py); more is answered 429 overloaded. 0: no such limit
    latency_budget_ms: int = field(default=2000, metadata=_range(0, 600_000))
    # a submission that finds no room waits up to this long for a commit to make some
    # (node/waiting_room.py) before it is answered 429 overloaded; 0: answered at once
    waiting_room_ms: int = field(default=1000, metadata=_range(0, 60_000))
    # check batches' signatures in a worker process (0: inline)
    signature_processes: int = field(default=1, metadata=_range(0, 64))

    # --- memory (docs/operations.md, "Memory") ---------------------------------------------
    # encoded bytes of pending transactions at most (besides max_txs); more: mempool_full
    max_bytes: int = field(default=64 * 1024 * 1024, metadata=_range(1 << 20, 1 << 36))


@dataclass(slots=True)
class SyncConfig:
    batch_blocks: int = field(default=200, metadata=_range(1, 10_000))


@dataclass(slots=True)
class StorageConfig:
    """LevelDB's memory: the two biggest parts of a node's resident size (docs/operations.md)."""

    # LRU cache of uncompressed table blocks
    block_cache_mb: int = field(default=DEFAULT_BLOCK_CACHE_MB, metadata=_range(8, 65536))
    # memtable; two while one is compacted
    write_buffer_mb: int = field(default=DEFAULT_WRITE_BUFFER_MB, metadata=_range(1, 4096))
    # snappy-compress table blocks as they are written (in every compaction again): 13-17 %
    # less disk for ~10 % more CPU per transaction; a store reads blocks written either way
    compress: bool = field(default=DEFAULT_COMPRESS, metadata=_check(_flag))
    # the size LevelDB cuts its table files at: larger ones, less node CPU and fewer bytes
    # written, more mapped memory where the store is scanned whole (the offline audit):
    # ledger.storage.DEFAULT_TABLE_FILE_MB; applies to the files written from then on
    table_file_mb: int = field(default=DEFAULT_TABLE_FILE_MB, metadata=_range(2, 1024))
    # how far below the node's priority the threads not run by Python (LevelDB's
    # compactions, uvloop's name lookups) run, in nice (the node's own plus this, at most
    # 19), so that consensus and execution go first where cores are shared
    # (node/storage_priority.py); 0: as the node's
    compaction_nice: int = field(default=DEFAULT_COMPACTION_NICE, metadata=_range(0, 19))
    # every N seconds, hand the C heap's freed pages back to the system (glibc's
    # malloc_trim: LevelDB's written-out memtables, large objects freed; node/heap_trim.py);
    # 0: never
    heap_trim_s: int = field(default=DEFAULT_HEAP_TRIM_S, metadata=_range(0, 86_400))

    # --- pruning (ledger/state_prune.py; docs/operations.md, "Pruning") ---------------------
    # keep the state of the last N heights only (reads and proofs below answer
    # "state_pruned"); 0: every height's state, an archive node — the default, since
    # auditors need history.
    state_keep_heights: int = field(default=0, metadata=_range(0, 1 << 40))
    # keep the block bodies and receipts of the last N heights only, headers and
    # certificates of all (ledger/block_prune.py; older ones answer "block_pruned");
    # 0: every block, an archive node — the default. At least [snapshots] interval ×
    # keep, so a node joining from a snapshot served here finds the blocks after it.
    block_keep_heights: int = field(default=0, metadata=_range(0, 1 << 40))


@dataclass(slots=True)
class ConsensusConfig:
    """How an idle network stays small and provably fresh (docs/consensus.md, "An idle
    network"; docs/operations.md)."""

    # with nothing to commit, a height waits this long after the last block before its
    # round 0 (the heartbeat block); 0: a block every round, as fast as the network goes
    empty_block_interval_ms: int = field(default=30_000, metadata=_range(0, 3_600_000))
    # a validator signs "my head at time T" this often, and gossips it (ledger/head.py)
    head_statement_interval_ms: int = field(default=2000, metadata=_range(500, 60_000))
    # a proposer announces its block's body before executing it, and a validator executes
    # an announced body at once instead of after the proposal (node/speculation.py); on
    # since admission judges a budget of blocks: docs/performance.md, "Judged over a
    # budget of blocks"
    speculate: bool = field(default=True, metadata=_check(_flag))


# --- state snapshots (docs/operations.md, "Joining by state sync") ---------------------------


@dataclass(slots=True)
class SnapshotConfig:
    """State snapshots this node takes and serves to nodes joining by state sync."""

    # a snapshot of the state every this many heights (0: none taken, none served)
    interval: int = field(default=1000, metadata=_range(0, 100_000_000))
    # the newest this many are kept (older ones are deleted once a new one is complete)
    keep: int = field(default=2, metadata=_range(1, 16))
    # snapshot parts (list, manifest, chunks) one peer may ask for per second, on average
    serve_per_s: int = field(default=20, metadata=_range(1, 10_000))
    # the share of one core a snapshot being taken may use (it pauses in between), so that
    # it does not slow consensus; 100: as fast as it goes
    cpu_percent: int = field(default=25, metadata=_range(5, 100))


SECTIONS = ("p2p", "api", "mempool", "sync", "storage", "consensus", "snapshots")


@dataclass(slots=True)
class NodeConfig:
    name: str = field(default="node", metadata=_check(_name))
    p2p: P2PConfig = field(default_factory=P2PConfig)
    api: APIConfig = field(default_factory=APIConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)
    snapshots: SnapshotConfig = field(default_factory=SnapshotConfig)
    log_level: str = field(default="info", metadata=_check(_log_level))

    # --- file form ----------------------------------------------------------------------

    def to_toml(self) -> str:
        lines = [
            "# CityLedger node configuration",
            f"name = {_toml(self.name)}",
            f"log_level = {_toml(self.log_level)}",
            "",
        ]
        for section in SECTIONS:
            lines.append(f"[{section}]")
            obj = getattr(self, section)
            for f in fields(obj):
                lines.append(f"{f.name} = {_toml(getattr(obj, f.name))}")
            lines.append("")
        return "\n".join(lines)

    @classmethod
    def from_toml(cls, text: str, source: str = "config.toml") -> NodeConfig:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        cfg = cls()
        for key, value in doc.items():
            if key in ("name", "log_level"):
                if not isinstance(value, str):
                    raise ConfigError(f"{source}: {key} must be a string")
                _check_value(_field(cfg, key), value, source)
                setattr(cfg, key, value)
            elif key in SECTIONS and isinstance(value, dict):
                _fill(getattr(cfg, key), value, f"{source} [{key}]")
            else:
                raise ConfigError(f"{source}: unknown setting {key!r}")
        cfg.check(source)
        return cfg

    def check(self, source: str = "config.toml") -> None:
        """The rules between settings of different sections (each setting's own range is
        checked as it is read): one clear line for the first one broken."""
        problem = block_pruning_problem(self.storage.block_keep_heights, self.snapshots)
        if problem is not None:
            raise ConfigError(f"{source}: [storage] block_keep_heights {problem}")

    def apply_setting(self, setting: str) -> None:
        """Apply one ``section.key=value`` (the value in TOML; a bare word is a string)."""
        name, sep, text = setting.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or section not in SECTIONS:
            raise ConfigError(
                f"{setting!r}: expected SECTION.KEY=VALUE with SECTION one of {', '.join(SECTIONS)}"
            )
        try:
            value = tomllib.loads(f"value = {text.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        _fill(getattr(self, section), {key.strip(): value}, f"[{section}]")


def block_pruning_problem(keep: int, snapshots: SnapshotConfig) -> str | None:
    """Why ``keep`` (``[storage] block_keep_heights``) would leave peers unable to join
    from this node, or None. A node joining by state sync from a snapshot this node serves
    fetches every block after it from peers: the blocks after the oldest snapshot kept
    (about ``interval × keep`` heights back) must still be here. Without snapshots nobody
    could ever join from this node's history."""
    if keep == 0:
        return None
    if snapshots.interval == 0:
        return (
            f"= {keep} needs snapshots ([snapshots] interval > 0): with none taken, a node "
            "could never join from this node's pruned history; set block_keep_heights = 0 "
            "(keep every block) or switch snapshots on"
        )
    least = snapshots.interval * snapshots.keep
    if keep < least:
        return (
            f"= {keep} is below [snapshots] interval × keep = {snapshots.interval} × "
            f"{snapshots.keep} = {least}: a node joining from the oldest snapshot served "
            f"here could not fetch the blocks after it; use at least {least}"
        )
    return None


def _fill(obj: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(obj, key)
        ok = (
            isinstance(value, type(current))
            or (isinstance(current, float) and isinstance(value, int))
        ) and not (isinstance(value, bool) and not isinstance(current, bool))
        if not ok:
            raise ConfigError(f"{where}: {key} must be {type(current).__name__}")
        _check_value(known[key], value, where)
        setattr(obj, key, value)


def _field(obj: Any, name: str) -> Field[Any]:
    return next(f for f in fields(obj) if f.name == name)


def _check_value(f: Field[Any], value: Any, where: str) -> None:
    """Refuse ``value`` for setting ``f`` if it is out of the field's range or its check
    finds it wrong."""
    bounds = f.metadata.get("range")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        lo, hi = bounds
        raise ConfigError(f"{where}: {f.name} must be between {lo} and {hi}, not {value}")
    check = f.metadata.get("check")
    problem = None if check is None else check(value)
    if problem is not None:
        raise ConfigError(f"{where}: {f.name} {problem}")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def is_loopback(address: str) -> bool:
    """Whether the host of ``host:port`` is a loopback address (or ``localhost``)."""
    host, _ = split_host_port(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_problem(config: NodeConfig) -> str | None:
    """Why ``config`` may not run: plaintext links or API bound beyond loopback."""
    if not config.p2p.tls and not is_loopback(config.p2p.listen):
        return (
            f"refusing plaintext peer links on {config.p2p.listen}: set [p2p] tls = true "
            "(plaintext is for loopback only)"
        )
    if not config.api.tls and not is_loopback(config.api.listen):
        return (
            f"refusing a plaintext API on {config.api.listen}: set [api] tls = true "
            "or bind it to 127.0.0.1 (plaintext is for loopback only)"
        )
    return None


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(f"address {address!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


class _InHome:
    """A file of a node's home: read on a :class:`Home`, its path under ``home.path``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, home: Home, owner: type[Home]) -> str:
        return os.path.join(home.path, self.name)


@dataclass(frozen=True, slots=True)
class Home:
    """A node's home directory and the files in it (the module docstring says what each is)."""

    path: str

    config = _InHome("config.toml")
    genesis = _InHome("genesis.json")
    key = _InHome("node_key.json")
    tls_key = _InHome("tls_key.pem")
    tls_cert = _InHome("tls_cert.pem")
    data = _InHome("data")
    signer_state = _InHome("signer_state.msgpack")
    pid = _InHome("node.pid")
    snapshots = _InHome("snapshots")  # state snapshots served to joining nodes (node/snapshots.py)

    def open_to_others(self) -> list[tuple[str, int]]:
        """(path, mode) of the home, its data directory and its key file where group or
        others have any access: ``node start`` warns once (docs/operations.md)."""
        out = []
        for path in (self.path, self.data, self.key):
            mode = exposed(path)
            if mode is not None:
                out.append((path, mode))
        return out

    def load_config(self) -> NodeConfig:
        try:
            with open(self.config, encoding="utf-8") as f:
                return NodeConfig.from_toml(f.read(), self.config)
        except FileNotFoundError:
            raise ConfigError(
                f"no config at {self.config}; run `cityledger node init --home {self.path}` first"
            ) from None

    def add_observer(self, public_key: bytes) -> bool:
        """List ``public_key`` in ``[p2p] observers`` (config.toml rewritten whole, by a
        rename); whether it was new. A running node rereads them on SIGHUP
        (node/membership.py): how a city that joins later follows the chain before it is
        voted in (``cityledger node allow-observer``, ``devnet join``)."""
        config = self.load_config()
        if public_key.hex() in config.p2p.observers:
            return False
        config.p2p.observers.append(public_key.hex())
        with open(self.config + ".tmp", "w", encoding="utf-8") as f:
            f.write(config.to_toml())
        os.replace(self.config + ".tmp", self.config)
        return True

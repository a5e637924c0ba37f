"""A real validator network under test, with the knobs the fault suite turns.

Built on :mod:`devnet.layout` (keys, genesis, configs) and :mod:`devnet.processes`
(start and stop by pid). A :class:`Cluster` adds:

* a transport: ``direct`` (loopback, as the devnet), ``relay`` (every peer link
  through :class:`~tests.e2e.relay.RelayMesh`, no root needed) or ``netns`` (one
  network namespace per node, :class:`~tests.e2e.netns.NetnsMesh`, root only);
* a :class:`~tests.e2e.witness.Witness` observer that records signed messages;
* process faults by pid: SIGKILL, SIGSTOP/SIGCONT, restart with faults patched in
  by :mod:`tests.e2e.launcher` (crash points, byzantine mode) — every node is started
  through that launcher, which then runs the ordinary ``cityledger node start``;
* bookkeeping of which nodes are up, paused or meant to be faulty, so the load
  and the invariants talk only to the nodes that can answer.

Every process it starts, :meth:`Cluster.close` stops — by pid, SIGCONT first for a
paused one — and the relay, namespaces and witness go with it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from devnet import layout, processes
from devnet.demo import demo_summary
from devnet.layout import Network, NodeEntry
from ledger.crypto import PrivateKey
from ledger.encoding import decode
from ledger.genesis import Genesis
from ledger.keyfile import read_key_file
from node.api.auth import sign_request
from node.config import Home
from node.tls import anchors_pem, tls_context
from tests.e2e import netns as netns_mod
from tests.e2e.launcher import CRASH_EXIT_CODE, Faults, command, environment
from tests.e2e.relay import RelayMesh
from tests.e2e.witness import INTRUDER_KEY, WITNESS_KEY, Witness

START_TIMEOUT_S = 60.0
# The founding audit office's auditor (its key, like every devnet member key, is derived
# from a public label): the invariant checker reads blocks and receipts whole with it.
AUDITOR = PrivateKey.from_label(str(demo_summary()["auditor_label"]))
HTTP_TIMEOUT_S = 3.0


class Cluster:
    """``validators`` nodes under ``home``; call :meth:`start`, always :meth:`close`."""

    def __init__(
        self,
        home: str,
        validators: int = 4,
        *,
        transport: str = "direct",
        seed: int = 0,
        witness: bool = True,
        faults: dict[str, Faults] | None = None,
        settings: dict[str, Any] | None = None,
        shaping: Callable[[netns_mod.NetnsMesh], None] | None = None,
    ) -> None:
        """``settings``: ``{"section.key": value}`` written into every node's config.toml
        before the first start. ``shaping`` (transport ``netns`` only): the namespaces get
        shaped links (:mod:`tests.e2e.shaper`) and this is called with the mesh before
        any node starts, e.g. ``lambda mesh: mesh.shape(20, 2, 1)``."""
        if transport not in ("direct", "relay", "netns"):
            raise ValueError(f"unknown transport {transport!r}")
        self.home = home
        self.count = validators
        self.transport = transport
        self.seed = seed
        self.first_faults = faults or {}
        # the scenarios wait for heights without sending transactions: a short heartbeat
        self.settings = {"consensus.empty_block_interval_ms": 500, **(settings or {})}
        if shaping is not None and transport != "netns":
            raise ValueError("shaped links need the netns transport")
        self.shaping = shaping
        self.network: Network | None = None
        self.genesis: Genesis | None = None
        self._node_keys: dict[str, bytes] = {}
        self.relay: RelayMesh | None = None
        self.netns: netns_mod.NetnsMesh | None = None
        self.witness: Witness | None = None
        self.want_witness = witness
        self.paused: set[str] = set()
        self.faulty: set[str] = set()  # validators the scenario makes byzantine
        self.keys: dict[str, bytes] = {}
        self.former_keys: dict[bytes, str] = {}  # consensus keys a node rotated away from
        # the height each former key stopped voting at: what it signs from there on is not
        # its node's (a test plays a stolen old key)
        self.retired_at: dict[bytes, int] = {}
        self.faults: dict[str, Faults] = {}  # what each node was last started with
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.exit_codes: dict[str, int] = {}  # of each node's last process, once it ended
        self.loads: list[Any] = []  # tests.e2e.load.Load objects to stop before the nodes
        # verifies the nodes' HTTPS certificates (None: plaintext APIs); urllib uses it
        # by default once the cluster started, aiohttp clients pass it as ``ssl``
        self.api_ssl: ssl.SSLContext | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Cluster:
        self.network = layout.generate(
            self.home,
            self.count,
            base_port=processes.free_base_port(
                10, random.Random(self.seed ^ os.getpid() ^ time.time_ns())
            ),
            genesis_time_ms=int(time.time() * 1000),
        )
        self.genesis = Genesis.load(Home(self.nodes[0].home).genesis)
        self.keys = {e.name: read_key_file(Home(e.home).key).public_key for e in self.nodes}
        if self.transport == "netns":
            # off loopback a node serves its API only over HTTPS ([api] tls)
            self.settings.setdefault("api.tls", True)
            links = "bridge" if self.shaping is None else "shaped"
            self.netns = netns_mod.NetnsMesh(self.count, self.seed, links=links)
            if self.shaping is not None:
                self.shaping(self.netns)
        elif self.transport == "relay":
            self.relay = RelayMesh(self.seed)
        self._rewrite_configs()
        if self.want_witness:
            names = {key: name for name, key in self.keys.items()}
            self.witness = Witness(
                self.chain_id,
                names,
                [e.p2p for e in self.nodes],
                genesis_hash=self.genesis.hash,
                tls=bool(self.settings.get("p2p.tls", True)),
            )
        for entry in self.nodes:
            self.start_node(entry.name, self.first_faults.get(entry.name))
        if not self.wait(lambda: self.min_height() >= 1, START_TIMEOUT_S):
            raise AssertionError("the network did not commit block 1:\n" + self.logs())
        return self

    def _rewrite_configs(self) -> None:
        observers = [WITNESS_KEY.public_key.hex(), INTRUDER_KEY.public_key.hex()]
        entries = self.nodes
        ports = [int(e.p2p.rsplit(":", 1)[1]) for e in entries]
        api_ports = [int(e.api.rsplit(":", 1)[1]) for e in entries]
        if self.netns is not None:
            for i, e in enumerate(entries):
                e.p2p = f"{self.netns.address(i)}:{ports[i]}"
                e.api = f"{self.netns.address(i)}:{api_ports[i]}"
        for i, e in enumerate(entries):
            home = Home(e.home)
            config = home.load_config()
            config.p2p.listen = e.p2p
            config.api.listen = e.api
            config.p2p.observers = observers
            for name, value in self.settings.items():
                section, _, key = name.partition(".")
                setattr(getattr(config, section), key, value)
            if self.relay is not None:
                config.p2p.peers = [
                    f"127.0.0.1:{self.relay.add_link(e.name, o.name, '127.0.0.1', ports[j])}"
                    for j, o in enumerate(entries)
                    if j != i
                ]
            else:
                config.p2p.peers = [o.p2p for o in entries if o is not e]
            with open(home.config, "w", encoding="utf-8") as f:
                f.write(config.to_toml())
            e.https = config.api.tls
        self.net.save()
        if any(e.https for e in entries):
            self.api_ssl = api_client_context(self.keys.values())
            urllib.request.install_opener(
                urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.api_ssl))
            )

    def close(self) -> None:
        """Stop everything this cluster started (by pid), whatever state it is in."""
        for load in self.loads:
            load.close()
        if self.network is not None:
            for entry in self.nodes:
                self.stop_node(entry.name)
            self.network.save()
        for proc in self.procs.values():
            proc.poll()  # settled, so no dropped process object waits on a reused pid
        if self.witness is not None:
            self.witness.close()
        if self.relay is not None:
            self.relay.close()
        if self.netns is not None:
            self.netns.close()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- names --------------------------------------------------------------------------

    @property
    def net(self) -> Network:
        assert self.network is not None, "cluster not started"
        return self.network

    @property
    def nodes(self) -> list[NodeEntry]:
        return self.net.nodes

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.nodes]

    @property
    def chain_id(self) -> str:
        return self.net.chain_id

    def entry(self, name: str) -> NodeEntry:
        for e in self.nodes:
            if e.name == name:
                return e
        raise KeyError(name)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def rekeyed(self, name: str, key: bytes, effective: int) -> None:
        """``name`` signs (and links, and answers) as ``key`` from height ``effective``
        on (a key rotation)."""
        self.former_keys[self.keys[name]] = name
        self.retired_at[self.keys[name]] = effective
        self.keys[name] = key
        self._node_keys.pop(name, None)  # signed reads address the node by its key

    def proposer(self, height: int, round_: int = 0) -> str:
        assert self.genesis is not None
        key = self.genesis.validators.proposer(height, round_)
        return next(n for n, k in self.keys.items() if k == key)

    # --- processes ----------------------------------------------------------------------

    def start_node(
        self, name: str, faults: Faults | None = None, *, extra_args: tuple[str, ...] = ()
    ) -> int:
        """Start ``name`` through :mod:`tests.e2e.launcher` with ``faults`` (none: honest);
        ``extra_args`` go to ``node start`` (``--state-sync``)."""
        entry = self.entry(name)
        self.faults[name] = faults or Faults()
        self.exit_codes.pop(name, None)
        old = self.procs.pop(name, None)
        if old is not None:
            old.poll()  # settled now, so the dropped object never waits on a reused pid
        argv = command(faults, ["node", "start", "--home", entry.home, *extra_args])
        if self.netns is not None:
            argv = self.netns.command(self.index(entry.name), argv)
        log = open(os.path.join(entry.home, "node.log"), "ab")  # noqa: SIM115 - child's
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment(),
            start_new_session=True,  # as devnet.processes.start_node
        )
        log.close()
        entry.pid = proc.pid
        self.procs[name] = proc  # kept: its exit status is read by exit_code
        self.paused.discard(name)
        self.net.save()
        return proc.pid

    def exit_code(self, name: str) -> int | None:
        """The exit status of ``name``'s last process, None while it runs (a crash point
        exits with :data:`~tests.e2e.launcher.CRASH_EXIT_CODE`)."""
        self.running(name)
        return self.exit_codes.get(name)

    def crashed_at_point(self, name: str) -> bool:
        """Whether ``name``'s last process ended at its crash point (status 70)."""
        return self.exit_code(name) == CRASH_EXIT_CODE

    def configure(self, name: str, section: str, key: str, value: Any) -> None:
        """Change one setting in ``name``'s config.toml (takes effect at its next start)."""
        home = Home(self.entry(name).home)
        config = home.load_config()
        setattr(getattr(config, section), key, value)
        with open(home.config, "w", encoding="utf-8") as f:
            f.write(config.to_toml())

    def restart(self, name: str, faults: Faults | None = None) -> int:
        self.stop_node(name)
        return self.start_node(name, faults)

    def kill(self, name: str) -> None:
        """SIGKILL (a power cut) and reap."""
        entry = self.entry(name)
        if processes.is_running(entry.pid):
            assert entry.pid is not None
            os.kill(entry.pid, signal.SIGKILL)
            _reap(entry.pid)
        entry.pid = None
        self.paused.discard(name)
        self.net.save()

    def pause(self, name: str) -> None:
        entry = self.entry(name)
        assert entry.pid is not None and processes.is_running(entry.pid), f"{name} is not running"
        os.kill(entry.pid, signal.SIGSTOP)
        self.paused.add(name)

    def resume(self, name: str) -> None:
        entry = self.entry(name)
        if entry.pid is not None and processes.is_running(entry.pid):
            os.kill(entry.pid, signal.SIGCONT)
        self.paused.discard(name)

    def stop_node(self, name: str) -> None:
        """Graceful stop (SIGTERM, SIGKILL after 15 s); a paused node is resumed first."""
        entry = self.entry(name)
        if name in self.paused:
            self.resume(name)
        processes.stop_node(entry)
        self.net.save()

    def stop_all(self) -> None:
        for name in self.names:
            self.stop_node(name)

    def running(self, name: str) -> bool:
        """Asks the process object first, so that the first to reap a node that ended
        by itself is the cluster, which keeps its exit status (:meth:`exit_code`)."""
        proc = self.procs.get(name)
        entry = self.entry(name)
        if proc is not None and proc.pid == entry.pid:
            code = proc.poll()
            if code is None:
                return True
            self.exit_codes.setdefault(name, code)
            return False
        return processes.is_running(entry.pid)

    def up(self) -> list[str]:
        """Nodes running and not paused: the ones that can answer."""
        return [n for n in self.names if n not in self.paused and self.running(n)]

    def honest(self) -> list[str]:
        return [n for n in self.names if n not in self.faulty]

    # --- asking the nodes ---------------------------------------------------------------

    def get(self, name: str, path: str, *, timeout: float = HTTP_TIMEOUT_S) -> Any:
        return _get_json(self.entry(name).url + path, timeout)

    def get_canonical(self, name: str, path: str, *, timeout: float = HTTP_TIMEOUT_S) -> Any:
        """The msgpack rendering, strictly decoded: the exact bytes that were signed.

        A 429 is waited out and asked again (until ``timeout``), as a real client does:
        the invariant checks query from the same loopback address a flood scenario
        just used up the per-address rate limit of."""
        deadline = time.monotonic() + timeout
        while True:
            req = urllib.request.Request(
                self.entry(name).url + path,
                headers={"Accept": "application/msgpack", **self._audit_read(name, path)},
            )
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return decode(resp.read())
            except urllib.error.HTTPError as exc:
                body = exc.read()
                if exc.code != 429 or time.monotonic() >= deadline:
                    return decode(body)
                time.sleep(0.05)  # the bucket refills in ms; Retry-After rounds up to 1 s

    def _audit_read(self, name: str, path: str) -> dict[str, str]:
        """Headers signing ``path`` as the devnet's auditor, who may read every record
        (the checker verifies receipts and blocks whole; others see them redacted)."""
        node_key = self._node_keys.get(name)
        if node_key is None:
            node_key = bytes.fromhex(self.get(name, "/v1/status")["public_key"])
            self._node_keys[name] = node_key
        assert self.genesis is not None
        now = int(time.time() * 1000)
        return sign_request(AUDITOR, self.genesis.chain_id, node_key, "GET", path, b"", now)

    def status(self, name: str) -> dict[str, Any] | None:
        if name in self.paused or not self.running(name):
            return None
        try:
            answer = self.get(name, "/v1/status", timeout=2.0)
        except (OSError, ValueError):
            return None
        return answer if isinstance(answer, dict) else None

    def height(self, name: str) -> int:
        status = self.status(name)
        return -1 if status is None else int(status["height"])

    def heights(self, names: list[str] | None = None) -> dict[str, int]:
        return {n: self.height(n) for n in (names if names is not None else self.up())}

    def min_height(self, names: list[str] | None = None) -> int:
        heights = self.heights(names)
        return min(heights.values()) if heights else -1

    def max_height(self, names: list[str] | None = None) -> int:
        heights = self.heights(names)
        return max(heights.values()) if heights else -1

    def peer_count(self, name: str) -> int:
        status = self.status(name)
        if status is None:
            return -1
        validators = set(self.names)
        return sum(1 for p in status.get("peers", []) if p.get("name") in validators)

    # --- waiting ------------------------------------------------------------------------

    @staticmethod
    def wait(predicate: Any, timeout_s: float, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def wait_progress(self, names: list[str], above: int, timeout_s: float) -> float | None:
        """Seconds until every node in ``names`` has committed a height > ``above``."""
        started = time.monotonic()
        ok = self.wait(lambda: all(self.height(n) > above for n in names), timeout_s)
        return time.monotonic() - started if ok else None

    def wait_caught_up(self, name: str, timeout_s: float) -> float | None:
        """Seconds until ``name`` reaches the height the others had when we started."""
        others = [n for n in self.up() if n != name]
        target = self.max_height(others)
        started = time.monotonic()
        ok = self.wait(lambda: self.height(name) >= target, timeout_s)
        return time.monotonic() - started if ok else None

    def logs(self, lines: int = 40) -> str:
        return processes.log_tails(self.nodes, lines)

    def log_text(self, name: str) -> str:
        try:
            with open(f"{self.entry(name).home}/node.log", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def api_client_context(validators: Iterable[bytes]) -> ssl.SSLContext:
    """A TLS client context that accepts the HTTPS certificate of these validators'
    nodes only: each is issued by its node's consensus key (node/tls.py), so the
    validators' trust anchors are the whole check."""
    return tls_context(server_side=False, anchors=anchors_pem(validators))


def _get_json(url: str, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return json.loads(body)
        except ValueError:
            return {
                "error": {"code": str(exc.code), "message": body[:200].decode(errors="replace")}
            }


def _reap(pid: int) -> None:
    deadline = time.monotonic() + 10
    while processes.is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)

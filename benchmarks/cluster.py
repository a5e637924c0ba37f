"""A network of real node processes on loopback for one benchmark run.

Built on :mod:`devnet.layout` (keys, genesis, configs) and :mod:`devnet.processes`
(start and stop one node, always by its own pid). Resource figures come from
``/proc``: CPU seconds (``stat``), peak resident memory (``status`` VmHWM, the
kernel's own high-water mark), bytes written to storage (``io`` write_bytes) and
the data directory's size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from devnet import layout, processes
from devnet.layout import Network, NodeEntry
from node.config import Home

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One process's counters at one instant (``None`` when it is not running)."""

    cpu_s: float
    peak_rss_mb: float
    write_bytes: int


def sample_pid(pid: int | None) -> ProcSample | None:
    """A node's counters, its worker processes included (their CPU and peak memory are
    added to the node's: a node that hands work to a child must not look cheaper)."""
    if pid is None:
        return None
    own = _sample_one(pid)
    if own is None:
        return None
    cpu_s, peak_mb, write_bytes = own.cpu_s, own.peak_rss_mb, own.write_bytes
    for child in _descendants(pid):
        sample = _sample_one(child)
        if sample is not None:
            cpu_s += sample.cpu_s
            peak_mb += sample.peak_rss_mb
            write_bytes += sample.write_bytes
    return ProcSample(cpu_s, peak_mb, write_bytes)


def task_files(pid: int, name: str) -> Iterator[str]:
    """The text of ``/proc/<pid>/task/<thread>/<name>`` for each thread of ``pid`` that
    can be read (a process or thread that has gone is passed over)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/{name}", encoding="ascii") as f:
                text = f.read()
        except OSError:
            continue
        yield text


def _descendants(pid: int, limit: int = 64) -> list[int]:
    """Live child processes of ``pid`` and theirs (from ``/proc/<pid>/task/*/children``)."""
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < limit:
        parent = todo.pop()
        for text in task_files(parent, "children"):
            try:
                kids = [int(k) for k in text.split()]
            except ValueError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out[:limit]


def _sample_one(pid: int) -> ProcSample | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime + stime, and the same for children it has waited for (a worker that ended)
        cpu_s = sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
        peak_kb = 0
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak_kb = int(line.split()[1])
        write_bytes = 0
        try:
            with open(f"/proc/{pid}/io", encoding="ascii") as f:
                for line in f:
                    if line.startswith("write_bytes:"):
                        write_bytes = int(line.split()[1])
        except OSError:
            pass
        return ProcSample(cpu_s, peak_kb / 1024, write_bytes)
    except (OSError, IndexError, ValueError):
        return None


class BenchError(RuntimeError):
    """The benchmark could not run as asked (not a slow result: a broken run)."""


@dataclass
class NetworkOptions:
    """What every scenario's network is (``cityledger bench``'s common options): how many
    validators, the workload and its seed, where it lives, and settings for every node."""

    validators: int = 4
    workload: str = "mix"
    seed: int = 7
    home: str = ""
    keep: bool = False
    settings: tuple[str, ...] = ()  # "section.key=value" for every node

    def recorded(self) -> dict[str, Any]:
        """The options as the figures' JSON records them (not where the network lived)."""
        return {k: v for k, v in vars(self).items() if k != "home"}


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (from ``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


def dir_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


@dataclass
class Cluster:
    """``validators`` node processes; :meth:`close` stops every one it started, by pid."""

    validators: int
    home: str = ""
    keep: bool = False
    mempool_max: int | None = None
    settings: tuple[str, ...] = ()  # "section.key=value" for every node's config.toml
    network: Network = field(init=False)
    _own_home: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not self.home:
            self.home = tempfile.mkdtemp(prefix="cityledger-bench-")
            self._own_home = True
        self.network = layout.generate(
            os.path.join(self.home, "net"),
            self.validators,
            chain_id="cityledger-bench",
            base_port=processes.free_base_port(),
            genesis_time_ms=int(time.time() * 1000),
        )
        for entry in self.network.nodes:
            self._tune(entry)

    def _tune(self, entry: NodeEntry) -> None:
        """Bench settings: no per-client rate limit (one client drives everything), then
        the run's own ``settings``."""
        home = Home(entry.home)
        config = home.load_config()
        config.api.rate_limit_per_s = 1_000_000.0
        config.api.rate_limit_burst = 1_000_000
        config.api.tx_rate_limit_per_s = 1_000_000.0
        config.api.tx_rate_limit_burst = 1_000_000
        config.api.byte_rate_limit_per_s = float(1 << 40)
        config.api.byte_rate_limit_burst = 1 << 40
        if self.mempool_max is not None:
            config.mempool.max_txs = self.mempool_max
        for setting in self.settings:
            config.apply_setting(setting)
        with open(home.config, "w", encoding="utf-8") as f:
            f.write(config.to_toml())

    @property
    def nodes(self) -> list[NodeEntry]:
        return self.network.nodes

    @property
    def chain_id(self) -> str:
        return self.network.chain_id

    def start(self, index: int | None = None) -> None:
        for i, entry in enumerate(self.nodes):
            if index is None or i == index:
                processes.start_node(entry)
        self.network.save()

    def stop(self, index: int) -> None:
        processes.stop_node(self.nodes[index])
        self.network.save()

    def close(self) -> None:
        """Stop every node by its own pid (all at once; a second Ctrl-C or SIGTERM waits
        until they are stopped); remove the home unless asked to keep it."""
        try:
            processes.stop_nodes(self.nodes)
            self.network.save()
        finally:
            if self._own_home and not self.keep:
                shutil.rmtree(self.home, ignore_errors=True)

    def wait_height(self, height: int, timeout_s: float, indexes: list[int] | None = None) -> bool:
        deadline = time.monotonic() + timeout_s
        chosen = [self.nodes[i] for i in (indexes or range(len(self.nodes)))]
        while time.monotonic() < deadline:
            heights = [self.height(n) for n in chosen]
            if all(h >= height for h in heights):
                return True
            time.sleep(0.2)
        return False

    @staticmethod
    def height(entry: NodeEntry) -> int:
        status = processes.node_status(entry)
        return -1 if status is None else int(status.get("height", -1))

    def samples(self) -> list[ProcSample | None]:
        return [sample_pid(n.pid) for n in self.nodes]

    def data_bytes(self) -> list[int]:
        return [dir_bytes(Home(n.home).data) for n in self.nodes]

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for entry in self.nodes:
            try:
                with open(
                    os.path.join(entry.home, "node.log"), encoding="utf-8", errors="replace"
                ) as f:
                    out.append(f"--- {entry.name}\n" + "".join(f.readlines()[-lines:]))
            except OSError:
                pass
        return "\n".join(out)


@contextlib.contextmanager
def running(opts: NetworkOptions, mempool_max: int | None = None) -> Iterator[Cluster]:
    """The network of ``opts`` started and past block 1; every process it started is
    stopped by pid when the block ends."""
    cluster = Cluster(
        opts.validators, opts.home, keep=opts.keep, mempool_max=mempool_max, settings=opts.settings
    )
    try:
        cluster.start()
        if not cluster.wait_height(1, 90):
            raise BenchError("the network did not commit block 1 in 90 s:\n" + cluster.log_tail())
        yield cluster
    finally:
        cluster.close()

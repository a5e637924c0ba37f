"""``cityledger bench audit``: the offline audit's rate and peak memory on a chain of N txs.

A 4-validator network is laid out (``devnet.layout``) and one of its nodes is opened in
this process; the bench workload (``benchmarks.workload``: the population's setup, then
the mix, invalid items left out) is committed block by block the way the runtime does
it — the proposer builds and executes each block, all four validators' precommits
certify it, the node commits it to its LevelDB store. The node is then closed (a stopped
node), and ``cityledger audit verify --home`` runs on its home in a separate process with
the home's genesis, as an auditor would run it. The figures:

* ``audit_tps``: transactions audited per second, from the audit's own JSON (replay,
  every check and the comparison, without the process start-up); ``audit_wall_s`` is the
  whole command;
* ``audit_peak_rss_mb``: the peak resident size of the largest process of the audit (the
  command or one of its signature workers: the largest ``VmHWM`` sampled every 0.2 s),
  which counts the pages of the table files LevelDB maps as it reads them. Not
  ``ru_maxrss`` of the children: a child forked from this process is, until it execs
  the audit, a copy of it — and this process holds the chain it has just built and its
  workload (1.3 GB at 191,710 transactions) — and the kernel keeps that copy's resident
  size in the child's ``ru_maxrss`` across the exec (``earlier_children_peak_mb``
  and ``audit_rusage_maxrss_mb`` show it);
* ``audit_peak_anon_mb`` / ``audit_peak_anon_tree_mb``: the peak anonymous memory
  (``RssAnon``, sampled every 0.2 s) of the largest process, and of the audit's processes
  together: what the audit itself holds (see :class:`AnonSampler`);
* ``store_mb``: the size of the audited ``data/``, for the memory it is set against.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.ceiling import cores
from benchmarks.workload import build_workload
from devnet import layout
from ledger.crypto import PrivateKey
from ledger.keyfile import read_key_file
from ledger.storage.temp_dirs import owned_temp_dir
from ledger.tx import Transaction
from ledger.votes import CommitCertificate, Vote, VoteType
from node.config import Home
from node.process import open_node
from node.runtime import Node

CHAIN_ID = "cityledger-bench"


@dataclass
class AuditBenchOptions:
    txs: int = 50_000
    block_txs: int = 1000
    workers: int | None = None  # audit verify --workers (None: its default)
    streaming: bool | None = None  # audit verify --streaming / --in-memory (None: its rule)
    seed: int = 7
    keep: str | None = None  # keep the node home here (and reuse it when it is there)


def run_audit_bench(opts: AuditBenchOptions, say: Callable[[str], None]) -> dict[str, Any]:
    with owned_temp_dir("cityledger-bench-audit-") as scratch:
        net = opts.keep or os.path.join(scratch, "net")
        marker = os.path.join(net, "AUDITED_HOME")  # the built node's home, for --keep
        built_s = 0.0
        if not os.path.isfile(marker):
            started = time.perf_counter()
            home = _build(net, opts, say)
            built_s = time.perf_counter() - started
            with open(marker, "w") as f:
                f.write(home)
        with open(marker) as f:
            doc = _audit(f.read(), opts, say)
    doc["build_s"] = round(built_s, 1)
    doc["options"] = vars(opts)
    doc["cores"] = cores()
    doc["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return doc


def _build(net: str, opts: AuditBenchOptions, say: Callable[[str], None]) -> str:
    """The chain in the first node's store, closed at the end (stopped): its home."""
    now = int(time.time() * 1000)
    network = layout.generate(net, 4, chain_id=CHAIN_ID, genesis_time_ms=now)
    homes = [n.home for n in network.nodes]
    keys = [read_key_file(Home(home).key, None) for home in homes]
    for other in homes[1:]:
        shutil.rmtree(other, ignore_errors=True)  # one stopped node is what is audited
    node = open_node(homes[0])
    try:
        work = build_workload(CHAIN_ID, now, 1, opts.txs, seed=opts.seed)
        txs = [tx for phase in work.setup for tx in phase]
        txs += [Transaction.decode(item.raw) for item in work.items if item.valid]
        say(f"building a chain of {len(txs):,} transactions ({opts.block_txs:,} per block)")
        last: CommitCertificate | None = None
        for start in range(0, len(txs), opts.block_txs):
            last = _commit(node, keys, txs[start : start + opts.block_txs], last)
    finally:
        node.store.close()
    return homes[0]


def _commit(
    node: Node, keys: list[PrivateKey], txs: list[Transaction], last: CommitCertificate | None
) -> CommitCertificate:
    """One height: the block built and executed, certified by every validator, committed."""
    built = node.executor.build_block(txs, int(time.time() * 1000), node.key.public_key, last)
    block = built.block
    votes = [
        Vote.create(k, CHAIN_ID, VoteType.PRECOMMIT, block.height, 0, block.hash) for k in keys
    ]
    cert = CommitCertificate.from_votes(votes)
    node.executor.commit(built, cert, sync=False)
    return cert


def _audit(home: str, opts: AuditBenchOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """``audit verify --home`` in a process of its own: its figures and peak memory."""
    data = Home(home).data
    store_bytes = sum(e.stat().st_size for e in os.scandir(data) if e.is_file())
    cmd = [sys.executable, "-m", "cli.main", "audit", "verify", "--home", home]
    cmd += ["--genesis", Home(home).genesis, "--json"]
    if opts.workers is not None:
        cmd += ["--workers", str(opts.workers)]
    if opts.streaming is not None:
        cmd.append("--streaming" if opts.streaming else "--in-memory")
    say(f"auditing {home} ({store_bytes / 2**20:,.0f} MB of store files)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        sampler = AnonSampler(proc.pid)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=3600)
        finally:
            sampler.stop()
    wall = time.perf_counter() - started
    rusage_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise RuntimeError(f"audit verify failed ({proc.returncode}): {err.strip()}")
    report = json.loads(out)
    return {
        "txs": report["txs"],
        "heights": report["heights"],
        "rows_compared": report["rows_compared"],
        "segments": report["segments"],
        "streamed": report["streamed"],
        "tree_beside": report.get("tree_beside", False),  # absent before it existed
        "audit_s": report["seconds"],
        "audit_wall_s": round(wall, 2),
        "audit_tps": report["tx_per_s"],
        "audit_peak_rss_mb": round(sampler.peak_hwm_kb / 1024, 1),
        "audit_rusage_maxrss_mb": round(rusage_kb / 1024, 1),
        "audit_peak_anon_mb": round(sampler.peak_one_kb / 1024, 1),
        "audit_peak_anon_tree_mb": round(sampler.peak_tree_kb / 1024, 1),
        "earlier_children_peak_mb": round(before / 1024, 1),
        "store_mb": round(store_bytes / 2**20, 1),
    }


class AnonSampler:
    """Samples the anonymous resident memory (``RssAnon``) and the peak resident size
    (``VmHWM``) of a process and its children.

    The resident size also counts the pages of files the process maps: LevelDB maps the
    table files it reads, so an audit that reads a whole store shows that store's pages,
    which the kernel drops first under pressure. The anonymous part is what the audit
    itself holds: the largest process's peak, and the peak of the whole tree together.
    ``VmHWM`` is the kernel's own high-water mark of each process since its exec, so
    sampling misses only a rise in a process's last 0.2 s.
    """

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak_one_kb = 0
        self.peak_tree_kb = 0
        self.peak_hwm_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._done.wait(self.every_s):
            pids = [self.pid, *_children(self.pid)]
            sizes = [_status_kb(p, "RssAnon:") for p in pids]
            self.peak_one_kb = max(self.peak_one_kb, *sizes)
            self.peak_tree_kb = max(self.peak_tree_kb, sum(sizes))
            self.peak_hwm_kb = max(self.peak_hwm_kb, *(_status_kb(p, "VmHWM:") for p in pids))


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def _status_kb(pid: int, field: str) -> int:
    """A size in kB from ``/proc/PID/status`` (``field`` with its colon), 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0

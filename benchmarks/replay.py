"""Catch-up in one process: a fresh store catches up from a node home's chain.

``python -m benchmarks.replay --from HOME [--to HEIGHT] [--profile FILE]``: the blocks of
a stopped node's store (``HOME``, e.g. one of a network kept with ``bench ... --keep``)
are served as the node serves them (``Syncer.response_frame``: stored bytes, one frame
per batch), decoded as a frame from a peer, and applied by a :class:`node.sync.Syncer`
on a new LevelDB store started from the same genesis — every step of catch-up but the
socket. The wall time and the CPU of this process (and of its children: the signature
worker) give the catch-up rate without the network, the other nodes or the node's
start-up; ``--profile`` writes a cProfile of the applying.

The process's CPU is split by thread: the event loop's (``loop_us_per_tx``), LevelDB's
own threads (``leveldb_us_per_tx``: its compactions; threads that are not Python's, read
from ``/proc/self/task``, which profilers of Python never show) and the rest
(``other_us_per_tx``: the writer thread, mostly).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.cluster import CLK_TCK, task_files
from contracts.engine import genesis_state
from ledger.block import Block, Receipt
from ledger.genesis import Genesis
from ledger.storage import KVStore, open_leveldb
from ledger.votes import CommitCertificate
from node.chain import ChainStore
from node.collector import settled
from node.config import Home
from node.executor import Executor
from node.peers import Peer
from node.sigcache import SignatureCache, SignatureWorker
from node.sync import Syncer
from node.wire import SyncRequest, SyncResponse, decode_message
from node.write_behind import WriteBehind

FRAME_MAX = 64 * 1024 * 1024


class _Quiet:
    """The links and host of the applying syncer: nothing to send, nobody to tell."""

    def __init__(self) -> None:
        self.peers: dict[bytes, Peer] = {}
        self.faults: list[str] = []

    def send(self, peer: Peer, msg: SyncRequest) -> None:
        pass

    async def deliver(self, peer: Peer, frame: bytes, timeout_s: float) -> bool:
        return True

    def synced(self, block: Block, cert: CommitCertificate, receipts: Sequence[Receipt]) -> None:
        pass

    def sync_advanced(self, height: int) -> None:
        pass

    def local_fault(self, height: int, message: str) -> None:
        self.faults.append(message)


def _frames(source: KVStore, genesis: Genesis, to_height: int, batch: int) -> list[bytes]:
    """The sync answers a node holding ``source`` gives for heights 1..``to_height``."""
    server = Syncer(Executor(ChainStore(source, genesis), SignatureCache()), _Quiet(), _Quiet())
    frames = []
    height = 1
    while height <= to_height:
        wanted = min(batch, to_height - height + 1)  # no block past ``to_height``
        frame = asyncio.run(server.response_frame(SyncRequest(height, wanted)))
        assert frame is not None
        frames.append(frame)
        msg = decode_message(frame, FRAME_MAX)
        assert isinstance(msg, SyncResponse) and msg.blocks
        height = msg.blocks[-1].height + 1
    return frames


async def _apply(syncer: Syncer, frames: list[bytes]) -> None:
    peer = Peer(key=b"\x01" * 32, name="source", ws=None, dialed_by_us=True, height=1 << 40)  # type: ignore[arg-type]
    for frame in frames:
        msg = decode_message(frame, FRAME_MAX)
        assert isinstance(msg, SyncResponse)
        peer.sync_owed = 1
        if not await syncer.apply(peer, msg):
            raise SystemExit("a block was rejected")


def replay(
    home: str,
    to_height: int | None,
    batch: int,
    profile: str | None,
    worker: bool = True,
    behind: bool = True,
) -> dict[str, Any]:
    """``worker``: payload signatures checked ahead in a signature worker, and
    ``behind``: block writes on a writer thread, as a node does."""
    node_home = Home(home)
    genesis = Genesis.load(node_home.genesis)
    source = open_leveldb(node_home.data)
    scratch = tempfile.mkdtemp(prefix="cityledger-replay-")
    try:
        head = ChainStore(source, genesis).head().height
        top = head if to_height is None else min(head, to_height)
        frames = _frames(source, genesis, top, batch)
        txs = sum(h.tx_count for h in _headers(source, genesis, top))
        store = open_leveldb(os.path.join(scratch, "data"), create=True)
        try:
            chain = ChainStore(WriteBehind(store) if behind else store, genesis)
            chain.initialise(genesis_state(genesis))
            host = _Quiet()
            sigs = SignatureWorker(SignatureCache(), genesis.chain_id, processes=int(worker))
            precheck = (lambda txs: sigs.check(txs, signatures=False)) if worker else None
            syncer = Syncer(
                Executor(chain, SignatureCache()), host, host, batch_blocks=batch, precheck=precheck
            )
            cpu0, wall0, thread0 = _cpu(), time.perf_counter(), time.thread_time()
            tasks0 = _task_cpu()
            prof = cProfile.Profile() if profile else None
            if prof is not None:
                prof.enable()
            with settled():  # the collector as a node sets it after start-up
                asyncio.run(_apply(syncer, frames))
            sigs.close(wait=True)  # its CPU is counted once it is waited for
            if isinstance(chain.store, WriteBehind):
                chain.store.finish()
            if prof is not None:
                prof.disable()
                prof.dump_stats(profile)  # type: ignore[arg-type]
            loop_cpu = time.thread_time() - thread0
            leveldb_cpu = _foreign_threads_cpu(tasks0, _task_cpu(), _python_threads())
            wall, cpu = (
                time.perf_counter() - wall0,
                [b - a for a, b in zip(cpu0, _cpu(), strict=True)],
            )
            if host.faults or chain.head().height != top:
                raise SystemExit(f"replay stopped at {chain.head().height}: {host.faults}")
        finally:
            store.close()
    finally:
        source.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return _figures(top, txs, wall, cpu, loop_cpu, leveldb_cpu)


def _figures(
    blocks: int, txs: int, wall: float, cpu: list[float], loop_cpu: float, leveldb_cpu: float
) -> dict[str, Any]:
    """What a replay reports: ``cpu`` is the process's and the signature worker's CPU
    seconds, ``loop_cpu`` the event loop thread's, ``leveldb_cpu`` LevelDB's threads'."""
    return {
        "blocks": blocks,
        "txs": txs,
        "wall_s": round(wall, 3),
        "cpu_s": round(sum(cpu), 3),
        "tps": round(txs / wall, 1),
        "cpu_us_per_tx": round(1e6 * sum(cpu) / max(1, txs), 1),
        "loop_us_per_tx": round(1e6 * loop_cpu / max(1, txs), 1),
        "process_us_per_tx": round(1e6 * cpu[0] / max(1, txs), 1),
        "worker_us_per_tx": round(1e6 * cpu[1] / max(1, txs), 1),
        "leveldb_us_per_tx": round(1e6 * leveldb_cpu / max(1, txs), 1),
        "other_us_per_tx": round(1e6 * (cpu[0] - loop_cpu - leveldb_cpu) / max(1, txs), 1),
        "load_avg": os.getloadavg()[0],
    }


def _headers(source: KVStore, genesis: Genesis, top: int) -> list[Any]:
    chain = ChainStore(source, genesis)
    return [h for n in range(1, top + 1) if (h := chain.header(n)) is not None]


def _task_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process, by thread id (empty where
    ``/proc/self/task`` is not there to read)."""
    out: dict[int, float] = {}
    for stat in task_files(os.getpid(), "stat"):
        tid, rest = stat.split(" ", 1)
        fields = rest.rsplit(")", 1)[1].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return out


def _python_threads() -> set[int]:
    return {t.native_id for t in threading.enumerate() if t.native_id is not None}


def _foreign_threads_cpu(
    before: dict[int, float], after: dict[int, float], python: set[int]
) -> float:
    """CPU seconds that threads Python did not start (LevelDB's) spent between the two
    readings; a thread that started in between counts from zero."""
    return sum(cpu - before.get(tid, 0.0) for tid, cpu in after.items() if tid not in python)


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process (all its threads) and of its children (reaped)."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="home", required=True, help="a stopped node's home")
    parser.add_argument("--to", type=int, default=None, help="the last height (default: head)")
    parser.add_argument("--batch", type=int, default=200, help="blocks asked per request")
    parser.add_argument("--profile", default=None, help="write a cProfile to this file")
    parser.add_argument("--no-worker", action="store_true", help="no signature worker")
    parser.add_argument("--inline-writes", action="store_true", help="no writer thread")
    args = parser.parse_args()
    doc = replay(
        args.home, args.to, args.batch, args.profile, not args.no_worker, not args.inline_writes
    )
    print(json.dumps(doc))


if __name__ == "__main__":
    main()

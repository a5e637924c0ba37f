"""Benchmarks for the report (not tests): audit rate, and provenance latency.

    python -m tests.unit.cli.bench_cli audit --txs 20000
    python -m tests.unit.cli.bench_cli provenance --events 100 --runs 50

``audit`` builds a chain of shipment transactions in-process (real executor and
contracts, 3-of-4 certificates), writes it to a LevelDB store, and times
``audit verify --home``'s engine on it (replay from genesis, signatures in a pool,
byte-for-byte comparison), optionally under cProfile. ``provenance`` starts a real
4-validator network, records one shipment with ``--events`` events (one per block),
and times the provenance check (request + every proof) ``--runs`` times.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import shutil
import statistics
import tempfile
import time

from contracts.codes import with_check_digit
from ledger.genesis import Genesis, Member, Organisation
from ledger.storage import WriteBatch, open_leveldb
from ledger.tx import Transaction
from node.audit import ChainAuditor, StoreSource
from tests.unit.cli.kit import CHAIN_ID, CliNode, declare_payload, key, make_genesis, now_ms

TRADERS = 8


def bench_genesis() -> Genesis:
    base = make_genesis(now_ms() - 86_400_000)
    traders = tuple(
        Organisation(f"trader{i}", f"Trader {i}", "trader", "Busan",
                     (Member(key(f"trader{i}").public_key, ("admin", "trader"), "t"),))
        for i in range(TRADERS)
    )  # fmt: skip
    return Genesis(base.chain_id, base.genesis_time_ms, base.validators,
                   base.organisations + traders)  # fmt: skip


def build_chain(txs: int, per_block: int) -> CliNode:
    """Shipments declared and moved by eight traders: 1 declaration + 9 milestones each."""
    node = CliNode(genesis=bench_genesis())
    signers = [key(f"trader{i}") for i in range(TRADERS)]
    nonces = [0] * TRADERS
    pending: list[Transaction] = []
    n = 0
    while n < txs:
        i = (n // 10) % TRADERS
        sid = f"S{n // 10}"
        if n % 10 == 0:
            payload = declare_payload(sid, with_check_digit(f"MSCU{n // 10:06d}"))
            payload |= {"consignor": f"trader{i}", "declarant": f"trader{i}"}
            kind = "shipment.declare"
        else:
            payload = {"shipment_id": sid, "event": "departed", "place": "CNSHA",
                       "time_ms": node.genesis.genesis_time_ms}  # fmt: skip
            kind = "shipment.milestone"
        pending.append(Transaction.create(signers[i], CHAIN_ID, kind, nonces[i], payload))
        nonces[i] += 1
        n += 1
        if len(pending) == per_block:
            node.commit(pending)
            pending = []
    if pending:
        node.commit(pending)
    return node


def _chain_store(args: argparse.Namespace, tmp: str) -> tuple[Genesis, str]:
    """The benchmark chain in a LevelDB directory: built now, or copied from ``--cache``."""
    data, cache = os.path.join(tmp, "data"), args.cache
    if cache and os.path.exists(os.path.join(cache, "genesis.json")):
        with open(os.path.join(cache, "genesis.json")) as f:
            genesis = Genesis.from_json(f.read())
        shutil.copytree(os.path.join(cache, "data"), data)
        print(f"reusing the chain in {cache}")
        return genesis, data
    started = time.perf_counter()
    node = build_chain(args.txs, args.per_block)
    print(f"built {args.txs} txs in {node.chain.head().height} blocks "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    store = open_leveldb(data, create=True)
    batch = WriteBatch()
    for k, v in node.store.iterate(b""):
        batch.put(k, v)
    store.write(batch)
    store.close()
    if cache:
        shutil.copytree(data, os.path.join(cache, "data"), dirs_exist_ok=True)
        with open(os.path.join(cache, "genesis.json"), "w") as f:
            f.write(node.genesis.to_json())
    return node.genesis, data


def audit(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        genesis, data = _chain_store(args, tmp)
        store = open_leveldb(data)
        auditor = ChainAuditor(genesis, workers=args.workers)
        profile = cProfile.Profile() if args.profile else None
        if profile:
            profile.enable()
        cpu = time.process_time()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = auditor.run(StoreSource(store), compare_with=store)
        cpu = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        if profile:
            profile.disable()
        store.close()
    assert report.ok, report.findings
    total = cpu + workers_cpu
    print(f"audit verify --home: {report.txs} txs, {report.heights} blocks, "
          f"{report.rows_compared} rows compared in {report.seconds:.2f} s "
          f"= {report.tx_rate:,.0f} tx/s (workers={auditor.workers}); CPU: main process "
          f"{cpu:.2f} s, worker processes {workers_cpu:.2f} s, "
          f"{report.txs / total:,.0f} tx per CPU-second; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)


def provenance(args: argparse.Namespace) -> None:
    from cli.client import NodeClient
    from cli.shipment_cmd import provenance_of
    from cli.verified_reads import Reads
    from devnet import layout
    from node.config import Home
    from tests.integration import netkit

    layout.founding_organisations = lambda *_a, **_k: list(make_genesis(0).organisations)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp, netkit.running_network(tmp + "/net") as net:
        entry = net.nodes[0]
        genesis = Genesis.load(Home(entry.home).genesis)
        client = NodeClient(entry.url, key=key("officer"), chain_id=genesis.chain_id)
        acme, oceanic = key("acme"), key("oceanic")
        steps = [(acme, "shipment.declare", declare_payload("S-BENCH")),
                 (acme, "shipment.offer_custody", {"shipment_id": "S-BENCH", "to": "oceanic"}),
                 (oceanic, "shipment.accept_custody", {"shipment_id": "S-BENCH"})]  # fmt: skip
        for _ in range(args.events - len(steps)):
            steps.append((oceanic, "shipment.milestone", {"shipment_id": "S-BENCH",
                          "event": "arrived", "place": "KRPUS", "time_ms": now_ms()}))  # fmt: skip
        nonces: dict[bytes, int] = {}
        for signer, kind, payload in steps:  # one event per block, as in real life
            nonce = nonces.get(signer.public_key, 0)
            nonces[signer.public_key] = nonce + 1
            tx = Transaction.create(signer, genesis.chain_id, kind, nonce, payload)
            assert client.submit([tx])[0]["status"] == "pending"
            while client.get_any(f"/v1/txs/{tx.hash.hex()}")[0] != 200:
                time.sleep(0.02)
        reads = Reads(client, genesis)
        times, cpu = [], []
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            view = provenance_of(reads, "S-BENCH")[0].view
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        assert len(view.history) == args.events
        heights = len({e.height for e in view.history})
        times.sort()
        p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
        print(f"provenance of {args.events} events in {heights} blocks, {args.runs} runs: "
              f"p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, "
              f"max {times[-1]:.1f} ms; client CPU p50 {statistics.median(cpu):.1f} ms; "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            provenance_of(reads, "S-BENCH")
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("audit")
    a.add_argument("--txs", type=int, default=20_000)
    a.add_argument("--per-block", type=int, default=500)
    a.add_argument("--workers", type=int, default=None)
    a.add_argument("--profile", type=int, default=0, help="print the top N cProfile entries")
    a.add_argument("--cache", default=None, help="keep the built chain in DIR and reuse it")
    p = sub.add_parser("provenance")
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    {"audit": audit, "provenance": provenance}[args.what](args)


if __name__ == "__main__":
    main()

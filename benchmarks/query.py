"""``cityledger bench query``: provenance and proof queries, checked client-side, under load.

While the open-loop driver keeps the network busy with the workload at ``rate``, one
closed-loop reader (a customs officer's key, which may read every shipment) asks, in
turn:

* ``GET /v1/shipments/{id}`` (signed read) for a shipment of the setup, whose history
  keeps growing under the load, and checks the answer as the CLI does
  (:func:`lightclient.shipments.verify_shipment`: the commit certificate against the genesis
  validators, every record's state proof, the proof that the history ends there);
* ``GET /v1/txs/{hash}`` for a committed transaction, checked with
  :func:`lightclient.receipts.verify_receipt` (certificate, block, results and log proofs).

Latency is reported twice: the node's answer (request sent to body read) and the
whole query including the client-side verification.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
from rich.console import Console

from benchmarks.cluster import Cluster, NetworkOptions, running
from benchmarks.driver import HEADERS, Driver, Step
from benchmarks.population import Actor
from benchmarks.results import percentile
from benchmarks.run import drain, run_async, setup_loaded
from benchmarks.workload import Workload, bench_workload
from contracts.read_rules import Reader, may_read_tx
from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.storage import MemoryStore
from lightclient.receipts import verify_receipt
from lightclient.shipments import verify_shipment
from node.api.auth import sign_request
from node.config import Home


@dataclass
class QueryOptions(NetworkOptions):
    txs: int = 30_000
    rate: float = 1000.0
    queries: int = 2000


@dataclass
class Samples:
    server_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    entries: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        server, total = sorted(self.server_ms), sorted(self.total_ms)
        return {
            "count": len(total),
            "server_p50_ms": round(percentile(server, 50), 2),
            "server_p99_ms": round(percentile(server, 99), 2),
            "p50_ms": round(percentile(total, 50), 2),
            "p99_ms": round(percentile(total, 99), 2),
            "max_ms": round(total[-1], 2) if total else None,
            "mean_entries": round(self.entries / max(1, len(total)), 1),
            "failures": self.failures,
        }


def run_query(opts: QueryOptions, console: Console) -> dict[str, Any]:
    work = bench_workload(opts.validators, opts.txs, name=opts.workload, seed=opts.seed)
    with running(opts) as cluster:
        genesis = Genesis.load(Home(cluster.nodes[0].home).genesis)
        doc = run_async(_query(opts, cluster, work, genesis, console))
    doc["options"] = opts.recorded()
    return doc


async def _query(
    opts: QueryOptions, cluster: Cluster, work: Workload, genesis: Genesis, console: Console
) -> dict[str, Any]:
    urls = [n.url for n in cluster.nodes]
    async with setup_loaded(urls, work, console) as (http, watches):
        base = max(w.height for w in watches)
        console.print(f"[bold]queries[/] under {opts.rate:,.0f} tx/s of load…")
        driver = Driver(http, urls, work.items)
        load = asyncio.create_task(
            driver.run([Step(opts.rate)], lambda: max(w.txs_since(base) for w in watches))
        )
        began = time.monotonic()
        shipments, receipts = await _reader(http, urls, work, genesis, opts, load)
        elapsed = time.monotonic() - began
        log = await load
        await drain(watches, base, log.accepted(), 60.0)
        committed = max(w.txs_since(base) for w in watches)
    return {
        "shipment": shipments.summary(),
        "receipt": receipts.summary(),
        "queries_per_s": round((len(shipments.total_ms) + len(receipts.total_ms)) / elapsed, 1),
        "load_offered_tps": round(log.sent / max(1e-9, log.ended - log.began), 1),
        "load_committed": committed,
        "load_accepted": log.accepted(),
        "late_ticks": log.late_ticks,
    }


async def _reader(
    http: aiohttp.ClientSession,
    urls: list[str],
    work: Workload,
    genesis: Genesis,
    opts: QueryOptions,
    load: asyncio.Task[Any],
) -> tuple[Samples, Samples]:
    """Alternate shipment and receipt queries until ``opts.queries`` or the load ends."""
    officer = work.population.actors["customs"][0]
    ships = [s.id for s in work.population.all_ships]
    readable = readable_receipts(work, officer)
    rng = random.Random(opts.seed)
    shipments, receipts = Samples(), Samples()
    node_keys = {url: await _node_key(http, url) for url in urls}

    def signed(url: str, path: str) -> dict[str, str]:
        now = int(time.time() * 1000)
        return HEADERS | sign_request(
            officer.key, genesis.chain_id, node_keys[url], "GET", path, b"", now
        )

    for q in range(opts.queries):
        if load.done() and q > 0:
            break
        url = urls[q % len(urls)]
        if q % 2 == 0:
            ship_id = rng.choice(ships)
            path = f"/v1/shipments/{ship_id}"
            check = partial(_shipment_records, genesis=genesis, shipment_id=ship_id)
            await _timed_query(http, url + path, signed(url, path), shipments, check)
        else:
            tx_hash = rng.choice(readable)
            path = f"/v1/txs/{tx_hash.hex()}"
            check = partial(_receipt_records, genesis=genesis, tx_hash=tx_hash)
            await _timed_query(http, url + path, signed(url, path), receipts, check)
    return shipments, receipts


def readable_receipts(work: Workload, officer: Actor) -> list[bytes]:
    """The setup transactions whose receipts the read rules show ``officer`` whatever
    the state says (:func:`contracts.read_rules.may_read_tx` on an empty state): the
    public kinds, governance, and every shipment's, since customs reads all shipments.
    An energy transaction is its parties' and the regulator's: asking for it, the
    officer rightly gets a redacted receipt, which is no measure of a query's cost."""
    reader = Reader(officer.org, frozenset({officer.role}))
    nothing = MemoryStore()  # no rows: only what the rules grant without reading one
    return [
        tx.hash
        for phase in work.setup
        for tx in phase
        if may_read_tx(nothing, tx.kind, tx.sender, tx.payload, reader)
    ]


async def _timed_query(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    into: Samples,
    check: Callable[[Any], int],
) -> None:
    """One query: the node's answer, then ``check`` on it (the records it proved)."""
    answer, t0, t1 = await _get(http, url, headers, into)
    if answer is None:
        return
    try:
        entries = check(answer)
    except LedgerError as exc:
        _count(into, f"verify: {exc}")
        return
    into.entries += entries
    into.server_ms.append((t1 - t0) * 1000)
    into.total_ms.append((time.monotonic() - t0) * 1000)


def _shipment_records(answer: Any, *, genesis: Genesis, shipment_id: str) -> int:
    """A shipment answer checked as the CLI does; the history entries it proves."""
    return len(verify_shipment(answer, genesis, shipment_id).history)


def _receipt_records(answer: Any, *, genesis: Genesis, tx_hash: bytes) -> int:
    """A receipt answer checked as the CLI does: one record."""
    verify_receipt(answer, genesis, tx_hash)
    return 1


async def _node_key(http: aiohttp.ClientSession, url: str) -> bytes:
    """The node's public key, which a signed read names (node.api.auth)."""
    async with http.get(url + "/v1/status", headers=HEADERS) as resp:
        status = decode(await resp.read())
    key = status["public_key"]
    assert isinstance(key, bytes)
    return key


async def _get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], into: Samples
) -> tuple[Any, float, float]:
    t0 = time.monotonic()
    async with http.get(url, headers=headers) as resp:
        body = await resp.read()
        status = resp.status
    t1 = time.monotonic()
    if status != 200:
        _count(into, f"HTTP {status}")
        return None, t0, t1
    return decode(body), t0, t1


def _count(into: Samples, what: str) -> None:
    into.failures[what[:120]] = into.failures.get(what[:120], 0) + 1

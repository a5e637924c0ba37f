"""A real chain behind a real HTTP API for CLI tests, and a proxy that lies.

:class:`CliNode` is a :class:`~node.handle.NodeHandle` over a chain built with the
real executor and contracts; every block is committed with a 3-of-4 certificate.
:class:`ServerThread` serves the node's API on a loopback port from its own
thread and event loop (the CLI under test is synchronous), and produces a block
whenever transactions are pending. :class:`LyingProxy` forwards to a server and
rewrites chosen msgpack answers, to check that the CLI refuses them.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from click.testing import CliRunner, Result

from contracts.codes import with_check_digit
from contracts.energy import sign_reading
from ledger.block import Block
from ledger.crypto import PrivateKey
from ledger.encoding import Value, decode, encode
from ledger.genesis import Genesis, ValidatorOrg
from ledger.keyfile import write_key_file
from ledger.storage import KVStore, MemoryStore, WriteBatch, keys
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node.api.app import make_app
from node.config import APIConfig
from tests.unit.chain_kit import MemoryNode, phones_declaration, precommit_certificate
from tests.unit.genesis_kit import genesis_from_table

CHAIN_ID = "cli-test"
VALIDATORS = [PrivateKey.from_label(f"cli-validator-{i}") for i in range(4)]
NAMES = ["busan-0", "sejong-1", "incheon-2", "daejeon-3"]
CONTAINER = with_check_digit("MSCU123456")
SHIPMENT = "S-0001"

# organisation id -> (kind, [(member label, roles)])
ORGS: dict[str, tuple[str, list[tuple[str, tuple[str, ...]]]]] = {
    "busan-customs": ("agency", [("customs-admin", ("admin",)), ("officer", ("customs",))]),
    "busan-port": ("agency", [("port-ops", ("port",))]),
    "busan-permits": ("agency", [("clerk", ("permit_office",)), ("inspector", ("inspector",))]),
    "busan-audit": ("agency", [("auditor", ("auditor",))]),
    "acme": ("trader", [("acme", ("admin", "trader"))]),
    "globex": ("trader", [("globex", ("admin", "trader"))]),
    "outsider": ("trader", [("outsider", ("admin", "trader"))]),
    "oceanic": ("carrier", [("oceanic", ("admin", "carrier"))]),
    "energy-reg": ("agency", [("energy-regulator", ("energy_regulator",))]),
    "solar-coop": ("prosumer", [("solar-prosumer", ("admin", "prosumer"))]),
    "wind-coop": ("prosumer", [("wind-prosumer", ("admin", "prosumer"))]),
}
INTERVAL_MS = 900_000  # the default energy settlement interval


def key(label: str) -> PrivateKey:
    return PrivateKey.from_label(f"cli-test/{label}")


def make_genesis(genesis_time_ms: int) -> Genesis:
    """A devnet genesis (its keys come from labels): each agency runs one validator, so
    ``node init`` and ``node start`` accept it."""
    genesis = genesis_from_table(
        CHAIN_ID,
        genesis_time_ms,
        zip(NAMES, VALIDATORS, strict=True),
        ORGS,
        member_key=lambda _org, label: key(label),
        city="Busan",
    )
    agencies = [org for org, (kind, _) in ORGS.items() if kind == "agency"]
    runs = zip(VALIDATORS, agencies[: len(VALIDATORS)], strict=True)
    return genesis.replace(
        devnet=True, validator_orgs=tuple(ValidatorOrg(k.public_key, org) for k, org in runs)
    )


def certify(block: Block, signers: list[int] | None = None) -> CommitCertificate:
    keys = [VALIDATORS[i] for i in (signers if signers is not None else [0, 1, 2])]
    return precommit_certificate(block, keys, CHAIN_ID)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class CliNode(MemoryNode):
    """A minimal NodeHandle over a chain in ``store`` (memory by default)."""

    def __init__(self, store: KVStore | None = None, genesis: Genesis | None = None) -> None:
        super().__init__(
            genesis or make_genesis(now_ms() - 3_600_000),
            store if store is not None else MemoryStore(),
            key,
            VALIDATORS,
        )

    def status(self) -> dict[str, Value]:
        return {"peers": 3}

    def evidence(self) -> list[dict[str, Value]]:
        return []

    def commit(self, txs: list[Transaction], time_ms: int | None = None) -> Block:
        block = self.commit_at(txs, now_ms() if time_ms is None else time_ms).block
        for tx in block.txs:
            self.nonces[tx.sender] = max(self.nonces.get(tx.sender, 0), tx.nonce + 1)
        return block

    def produce(self) -> None:
        """Commit whatever the mempool holds (the server thread calls this)."""
        txs = self.mempool.reap(1000, 4 * 1024 * 1024)
        if txs:
            self.commit(txs)


def declare_payload(shipment_id: str = SHIPMENT, container: str = CONTAINER) -> dict[str, Value]:
    return phones_declaration(shipment_id, container, "KRPUS")


def build_journey(node: CliNode, shipment_id: str = SHIPMENT, milestones: int = 2) -> None:
    """A shipment's life over several blocks: declared, document, custody, milestones, cleared."""
    t = node.tx
    node.commit([t("acme", "shipment.declare", declare_payload(shipment_id))])
    bill = hashlib.sha256(b"bill of lading " + shipment_id.encode()).digest()
    node.commit(
        [
            t("acme", "shipment.offer_custody", {"shipment_id": shipment_id, "to": "oceanic"}),
            t(
                "acme",
                "shipment.attach_document",
                {"shipment_id": shipment_id, "type": "bill_of_lading", "sha256": bill},
            ),
        ]
    )
    node.commit([t("oceanic", "shipment.accept_custody", {"shipment_id": shipment_id})])
    for i in range(milestones):
        event = ("loaded", "departed", "arrived", "discharged")[i % 4]
        payload = {
            "shipment_id": shipment_id,
            "event": event,
            "place": "CNSHA",
            "time_ms": now_ms(),
        }
        node.commit([t("oceanic", "shipment.milestone", payload)])
    decision = {"shipment_id": shipment_id, "decision": "clear", "reason": "documents in order"}
    node.commit([t("officer", "shipment.customs_decision", decision)])


def build_permit(node: CliNode, permit_id: str = "P-0001", until_ms: int | None = None) -> None:
    t = node.tx
    node.commit(
        [
            t(
                "acme",
                "permit.apply",
                {"id": permit_id, "type": "business", "address": "1 Pier Rd, Busan",
                 "description": "warehouse"},
            )
        ]
    )  # fmt: skip
    node.commit([t("clerk", "permit.review", {"permit_id": permit_id})])
    node.commit([t("clerk", "permit.approve", {"permit_id": permit_id})])
    start = node.genesis.genesis_time_ms
    until = until_ms if until_ms is not None else start + 365 * 86_400_000
    issue = {"permit_id": permit_id, "valid_from": start, "valid_until": until}
    node.commit([t("clerk", "permit.issue", issue)])


def build_trades(node: CliNode) -> int:
    """solar-coop's meter reads a surplus in the interval of the next block; solar-coop
    offers it and wind-coop buys it with two bids (two trades). Four blocks over the
    next 31 minutes of block time (before ``now_ms()``); returns the interval."""
    start = node.chain.head().time_ms + 1_000
    interval = start - start % INTERVAL_MS
    meter, t = key("solar-meter"), node.tx
    register = {"meter_key": meter.public_key, "owner": "solar-coop", "name": "roof",
                "active_from_ms": interval}  # fmt: skip
    credit = {"account": "wind-coop", "amount": 1_000_000, "reference": "prepaid"}
    node.commit([t("energy-regulator", "energy.register_meter", register),
                 t("energy-regulator", "energy.credit_balance", credit)], start)  # fmt: skip
    reading = {"meter_key": meter.public_key, "interval_start_ms": interval,
               "produced_wh": 8_000, "consumed_wh": 1_000,
               "signature": sign_reading(meter, CHAIN_ID, interval, 8_000, 1_000)}  # fmt: skip
    orders = [("solar-prosumer", "offer", 5_000, 90), ("wind-prosumer", "bid", 2_000, 120),
              ("wind-prosumer", "bid", 2_000, 110)]  # fmt: skip
    txs = [t("solar-prosumer", "energy.submit_reading", reading)]
    for label, side, wh, price in orders:
        order = {"interval_start_ms": interval, "side": side, "quantity_wh": wh,
                 "price_per_kwh": price}  # fmt: skip
        txs.append(t(label, "energy.place_order", order))
    node.commit(txs, interval + INTERVAL_MS + 1_000)
    settle = t("energy-regulator", "energy.settle", {"interval_start_ms": interval})
    node.commit([settle], interval + 2 * INTERVAL_MS + 5_000)
    return interval


def rewrite_block(height: int, edit: Callable[[dict[str, Any]], None]) -> Callable[[KVStore], None]:
    """A change to a store: the block at ``height`` decoded, ``edit``-ed and written back."""

    def change(store: KVStore) -> None:
        obj = Block.decode(store.get(keys.block_key(height)) or b"").to_obj()
        edit(obj)
        batch = WriteBatch()
        batch.put(keys.block_key(height), encode(obj))
        store.write(batch)

    return change


class ServerThread:
    """Serve ``app`` on 127.0.0.1 from a background thread; optionally produce blocks."""

    def __init__(self, app: web.Application, node: CliNode | None = None) -> None:
        self.app = app
        self.node = node
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._producer: asyncio.Task[None] | None = None
        self.producing = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        self.call_async(self._start())
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self.node is not None:
            self._producer = asyncio.ensure_future(self._produce())

    async def _produce(self) -> None:
        assert self.node is not None
        while True:
            await asyncio.sleep(0.02)
            if self.producing:
                self.node.produce()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop (so it never races a request) and return its result."""

        async def run() -> Any:
            return fn()

        return self.call_async(run())

    def call_async(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=30)

    def stop(self) -> None:
        if self.loop.is_closed():
            return

        async def stop() -> None:
            if self._producer is not None:
                self._producer.cancel()
            if self._runner is not None:
                await self._runner.cleanup()

        self.call_async(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def serve(node: CliNode, *, produce: bool = True) -> ServerThread:
    return ServerThread(make_app(node, APIConfig()), node if produce else None).start()


Rewrite = Callable[[str, dict[str, Value]], dict[str, Value]]


class Liar:
    """What a lying proxy does to each answer: ``change`` (identity: honest); a test sets
    it to the lie it tells and puts it back."""

    def __init__(self) -> None:
        self.change: Rewrite = lambda _path, answer: answer

    def __call__(self, path: str, answer: dict[str, Value]) -> dict[str, Value]:
        return self.change(path, answer)


def lying_proxy(upstream: str, rewrite: Rewrite) -> ServerThread:
    """A server that forwards every request to ``upstream`` and rewrites msgpack answers."""

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        body = await request.read()
        async with (
            ClientSession() as session,
            session.request(
                request.method, upstream + request.raw_path, headers=headers, data=body or None
            ) as resp,
        ):
            data = await resp.read()
            content_type = resp.content_type
            status = resp.status
        if content_type == "application/msgpack" and status == 200:
            data = encode(rewrite(request.path, decode(data)))
        return web.Response(body=data, status=status, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return ServerThread(app).start()


class Served:
    """``node`` served (blocks come only from the test), a lying proxy in front of it
    (honest until its :class:`Liar` is told a lie), and in ``tmp`` the genesis file and
    a key file for every member of :data:`ORGS` and of ``more`` labels."""

    def __init__(self, node: CliNode, tmp: Path, more: Iterable[str] = ()) -> None:
        self.node = node
        self.server = serve(node, produce=False)
        self.liar = Liar()
        self.proxy = lying_proxy(self.server.url, self.liar)
        self.genesis = str(tmp / "genesis.json")
        Path(self.genesis).write_text(node.genesis.to_json())
        labels = [label for _, members in ORGS.values() for label, _ in members]
        self.keys = write_keys(str(tmp), [*labels, *more])

    def stop(self) -> None:
        self.proxy.stop()
        self.server.stop()


def write_keys(directory: str, labels: list[str]) -> dict[str, str]:
    """Unencrypted key files for ``labels``; label -> path."""
    paths = {}
    for label in labels:
        path = f"{directory}/{label}.key"
        write_key_file(path, key(label))
        paths[label] = path
    return paths


def run(args: list[str], **kw: Any) -> Result:
    """Invoke ``cityledger ARGS`` in-process, as the console script would."""
    from cli.main import cli
    from cli.output import console, err_console

    console.width = err_console.width = 200  # no wrapping inside the assertions' phrases
    return CliRunner().invoke(cli, args, catch_exceptions=True, **kw)


def message(result: Result) -> str:
    """What the user sees on failure: the error printed, or the LedgerError main would print."""
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += f"\nerror: {result.exception}"
    return text

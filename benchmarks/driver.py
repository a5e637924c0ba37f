"""The open-loop driver and the block watchers.

The driver sends the pre-signed workload through ``POST /v1/txs`` (canonical
msgpack batches) of the node each sender is bound to, tick by tick at the offered
rate, without waiting for answers: a slow network does not slow the offered load
(no coordinated omission), and each transaction's latency counts from its
*scheduled* send time. One WebSocket per node (``/v1/events``, blocks only)
records when each block is announced; a transaction's commit time is when its
block was announced by the node it was sent to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import msgpack

from benchmarks.workload import Item
from ledger.encoding import Value, decode
from ledger.tx import Transaction
from node.api.waits import NOT_NOW, Headers, retry_after_s

MSGPACK = "application/msgpack"
HEADERS = {"Content-Type": MSGPACK, "Accept": MSGPACK}
ACCEPTED = ""  # the code of an accepted transaction
REQUEST_TIMEOUT_S = 30.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
# A patient client: a node that admits only what it commits within its latency budget
# leaves the backlog of an overload with the clients, and offered 2,500 tx/s against
# ~500 committed, 30 s of retrying left a third of the valid transactions uncommitted
# (goodput 0.64-0.67). Two minutes drain 60,000 at that rate.
MAX_RETRIES = 150
HELD_BEHIND_REFUSED = "client:held_behind_refused"  # never sent: an earlier one never got in
BATCH_CAP = 2000  # transactions a request carries at most: a node's default unsigned_batch_max
RETRY_GRACE_S = 120.0  # retries go on at most this long after the last scheduled send


@dataclass
class BlockWatch:
    """Announce times of the blocks one node pushes on ``/v1/events``."""

    url: str
    announced: dict[int, float] = field(default_factory=dict)  # height -> monotonic time
    tx_count: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    @property
    def height(self) -> int:
        return max(self.announced, default=0)

    def txs_since(self, height: int) -> int:
        return sum(n for h, n in self.tx_count.items() if h > height)

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Watch until ``stop``; reconnect (the node may be restarting) after a pause."""
        while not stop.is_set():
            try:
                async with session.ws_connect(self.url + "/v1/events", heartbeat=10) as ws:
                    await ws.send_str(json.dumps({"blocks": True}))
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            msg = await asyncio.wait_for(ws.receive(), 0.5)
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                break
                            self._record(json.loads(msg.data), time.monotonic())
            except (aiohttp.ClientError, OSError):
                self.errors += 1
            if not stop.is_set():
                await asyncio.sleep(0.3)

    def _record(self, frame: dict[str, object], now: float) -> None:
        if frame.get("type") != "block":
            return
        height, count = frame.get("height"), frame.get("tx_count")
        if isinstance(height, int) and isinstance(count, int):
            self.announced.setdefault(height, now)
            self.tx_count[height] = count


@dataclass(frozen=True, slots=True)
class Step:
    """Offer ``rate`` tx/s for ``seconds`` (``None``: until the workload runs out)."""

    rate: float
    seconds: float | None = None


@dataclass
class StepResult:
    rate: float
    began: float
    ended: float
    first: int  # index of the step's first item
    sent: int
    committed: int = 0  # transactions committed (anywhere) while the step ran
    saturated: bool = False


@dataclass
class DriveLog:
    """What happened to each item: scheduled time and the node's answer."""

    sched: list[float]
    codes: list[str | None]
    accepted_at: list[float]  # when the node answered "pending" (0: never)
    steps: list[StepResult] = field(default_factory=list)
    began: float = 0.0
    ended: float = 0.0
    late_ticks: int = 0
    sent: int = 0
    answer_ms: list[float] = field(default_factory=list)  # per batch: scheduled to answered
    refusals: int = 0  # transactions answered "not now" (429), each time
    retried: int = 0  # of them, sent again after Retry-After

    @classmethod
    def of(cls, n: int) -> DriveLog:
        return cls([0.0] * n, [None] * n, [0.0] * n)

    def accepted(self) -> int:
        return sum(1 for c in self.codes if c == ACCEPTED)


class Driver:
    """Sends items to ``urls[item.node]`` at the rates of ``steps``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        items: Sequence[Item],
        *,
        tick_s: float = 0.05,
        node_map: Callable[[int], int] = lambda node: node,
    ) -> None:
        self.session = session
        self.urls = list(urls)
        self.items = items
        self.tick_s = tick_s
        self.node_map = node_map
        nowhere = {node_map(item.node) for item in items} - set(range(len(self.urls)))
        if nowhere:  # their posts would fail in tasks nobody awaits, and never be sent
            raise ValueError(f"items bound to nodes {sorted(nowhere)}: only {len(urls)} given")
        self.log = DriveLog.of(len(items))
        self._tasks: set[asyncio.Task[None]] = set()
        self._retry_until = math.inf  # no retry is sent after this (set when sending ends)
        # (node, sender) -> the sender's items for that node waiting behind its request
        self._held: dict[tuple[int, bytes], list[int]] = {}

    async def run(
        self, steps: Sequence[Step], committed: Callable[[], int], max_backlog_s: float = 5.0
    ) -> DriveLog:
        """Send every step in turn; a ramp stops at the first saturated step."""
        log, pos = self.log, 0
        log.began = time.monotonic()
        for step in steps:
            if pos >= len(self.items):
                break
            before = committed()
            result = StepResult(step.rate, time.monotonic(), 0.0, pos, 0)
            pos = await self._send_step(step, pos)
            result.ended = time.monotonic()
            result.sent = pos - result.first
            result.committed = committed() - before
            backlog = log.accepted() - committed()
            result.saturated = len(steps) > 1 and backlog > step.rate * max_backlog_s
            log.steps.append(result)
            if result.saturated:
                break
        log.sent = pos
        log.ended = time.monotonic()
        self._retry_until = log.ended + RETRY_GRACE_S
        deadline = time.monotonic() + RETRY_GRACE_S + REQUEST_TIMEOUT_S
        while self._tasks and time.monotonic() < deadline:  # retries spawn released batches
            await asyncio.wait(set(self._tasks), timeout=deadline - time.monotonic())
        return log

    async def _send_step(self, step: Step, pos: int) -> int:
        began = time.monotonic()
        ticks = 0
        carry = 0.0
        while pos < len(self.items):
            due = began + ticks * self.tick_s
            if step.seconds is not None and due >= began + step.seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -self.tick_s:
                self.log.late_ticks += 1
            carry += step.rate * self.tick_s
            n = int(carry)
            carry -= n
            if n:
                self._send_tick(pos, min(len(self.items), pos + n), due)
                pos = min(len(self.items), pos + n)
            ticks += 1
        return pos

    def _send_tick(self, start: int, end: int, due: float) -> None:
        by_node: dict[int, list[int]] = {}
        for i in range(start, end):
            self.log.sched[i] = due
            node = self.node_map(self.items[i].node)
            held = self._held.get((node, self.items[i].sender))
            if held is not None:  # its sender waits for an answer of that node
                held.append(i)
                continue
            by_node.setdefault(node, []).append(i)
        for node, indexes in by_node.items():
            self._spawn(node, indexes, due)

    def _spawn(self, node: int, indexes: list[int], due: float) -> None:
        """Post ``indexes`` to ``node``; until it answers, their senders' later
        transactions for it are held (one request in flight per sender and node, as a
        client that waits for its answer: two in flight arrive in either order, a later
        nonce behind a gap).

        Per node, not per sender: the workload replays a sender's committed setup
        transaction to another node than the sender's own. Held per sender, the replay's
        answer released what the sender held behind a refusal of its own node — to the
        replay's node, which admitted those transactions behind the gap and gossiped
        them on: the sender's node then refused its later ones ``too_many_gapped`` (12
        to 256 stranded in about one run in six at 3,500 offered)."""
        for i in indexes:
            self._held.setdefault((node, self.items[i].sender), [])
        task = asyncio.ensure_future(self._post(node, indexes, due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, node: int, indexes: list[int], due: float) -> None:
        """Send one batch; what is refused "not now" is sent again after ``Retry-After``
        (at most :data:`MAX_RETRIES` times, never after the run's deadline), its latency
        still counted from its first scheduled time.

        As a real client does, a sender whose transaction is refused "not now" sends its
        later ones only after it: they are held (:attr:`_held`) and go with the retry,
        in nonce order, instead of arriving behind a gap the node may refuse
        (``too_many_gapped``, or ``bad_nonce`` too far ahead) and the client never sends
        again."""
        for attempt in range(MAX_RETRIES + 1):
            wait_s, indexes = await self._post_in_batches(node, indexes, due)
            again = [i for i in indexes if self.log.codes[i] in NOT_NOW]
            self.log.refusals += len(again)
            waiting = {self.items[i].sender for i in again}
            self._release({self.items[i].sender for i in indexes} - waiting, node, due)
            if not again:
                return
            if attempt == MAX_RETRIES or time.monotonic() + wait_s > self._retry_until:
                self._give_up(node, waiting)
                return
            for sender in waiting:
                self._held.setdefault((node, sender), [])
            self.log.retried += len(again)
            await asyncio.sleep(wait_s)
            indexes = again + [i for s in waiting for i in self._held.pop((node, s), [])]
            indexes.sort()  # one sender's in nonce order
            for sender in waiting:
                self._held[node, sender] = []  # held again until this retry is answered

    async def _post_in_batches(
        self, node: int, indexes: list[int], due: float
    ) -> tuple[float, list[int]]:
        """POST ``indexes`` in order, at most :data:`BATCH_CAP` a request (a retry carries
        what its senders held, and may be larger than a node takes unsigned); a sender
        refused "not now" in one request has its later ones held, not sent. Returns the
        longest wait asked for and the indexes sent."""
        wait_s, sent = 0.0, []
        refused: set[bytes] = set()
        for start in range(0, len(indexes), BATCH_CAP):
            batch = []
            for i in indexes[start : start + BATCH_CAP]:
                sender = self.items[i].sender
                if sender in refused:
                    self._held.setdefault((node, sender), []).append(i)
                else:
                    batch.append(i)
            if not batch:
                continue
            body = msgpack.packb({"txs": [self.items[i].raw for i in batch]}, use_bin_type=True)
            wait_s = max(wait_s, await self._post_once(node, batch, body, due))
            refused |= {self.items[i].sender for i in batch if self.log.codes[i] in NOT_NOW}
            sent += batch
        return wait_s, sent

    def _release(self, senders: set[bytes], node: int, due: float) -> None:
        """Senders ``node`` has answered, none of them "not now": what they held for
        it goes."""
        out: list[int] = []
        for sender in senders:
            out += self._held.pop((node, sender), [])
        if out:
            self._spawn(node, sorted(out), due)

    def _give_up(self, node: int, senders: set[bytes]) -> None:
        """Retries to ``node`` are over for these senders: what they held for it is
        never sent."""
        for sender in senders:
            for i in self._held.pop((node, sender), []):
                self.log.codes[i] = HELD_BEHIND_REFUSED

    async def _post_once(self, node: int, indexes: list[int], body: bytes, due: float) -> float:
        """POST ``body``; records each item's answer code; returns the seconds the node
        asked to wait (``Retry-After-Ms`` or ``Retry-After``, 1 if it gave neither)."""
        codes = self.log.codes
        try:
            async with self.session.post(
                self.urls[node] + "/v1/txs", data=body, headers=HEADERS
            ) as resp:
                answer = msgpack.unpackb(await resp.read(), raw=False)
                status = resp.status
                retry_after = _seconds(resp.headers)
        except (aiohttp.ClientError, OSError, ValueError, TimeoutError) as exc:
            for i in indexes:
                codes[i] = f"client:{type(exc).__name__}"
            return 1.0
        answered = time.monotonic()
        self.log.answer_ms.append((answered - due) * 1000)
        results = answer.get("results") if isinstance(answer, dict) else None
        if status == 200 and isinstance(results, list) and len(results) == len(indexes):
            for i, r in zip(indexes, results, strict=True):
                codes[i] = ACCEPTED if r.get("status") == "pending" else r["error"]["code"]
                if codes[i] == ACCEPTED:
                    self.log.accepted_at[i] = answered
            return retry_after
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        code = error.get("code", "?") if isinstance(error, dict) else "?"
        for i in indexes:
            codes[i] = code if status == 429 and code in NOT_NOW else f"http{status}:{code}"
        return retry_after


def _seconds(headers: Headers) -> float:
    return retry_after_s(headers, default=1.0, lo=0.05, hi=30.0)


async def fetch_blocks(
    session: aiohttp.ClientSession,
    urls: Sequence[str],
    first: int,
    last: int,
    *,
    parallel: int = 8,
    deadline_s: float = 120.0,
) -> dict[int, tuple[list[bytes], int, int]]:
    """Height -> (transaction hashes, commit round, block time ms) for ``first..last``.

    Each height is asked of the nodes in turn (a busy node may time out); heights
    still missing at the deadline are left out (the caller counts them).
    """
    out: dict[int, tuple[list[bytes], int, int]] = {}
    heights = iter(range(first, last + 1))
    deadline = time.monotonic() + deadline_s

    async def worker() -> None:
        for height in heights:
            for attempt in range(2 * len(urls)):
                if time.monotonic() > deadline:
                    return
                url = urls[(height + attempt) % len(urls)]
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    out[height] = await _block(session, f"{url}/v1/blocks/{height}")
                    break

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return out


async def _block(session: aiohttp.ClientSession, url: str) -> tuple[list[bytes], int, int]:
    async with session.get(url, headers=HEADERS, timeout=REQUEST_TIMEOUT) as resp:
        resp.raise_for_status()
        answer = decode(await resp.read())
    assert isinstance(answer, dict)
    block, cert = answer["block"], answer["certificate"]
    assert isinstance(block, dict) and isinstance(cert, dict)
    txs, header = block["txs"], block["header"]
    assert isinstance(txs, list) and isinstance(header, dict)
    time_ms, rnd = header["time_ms"], cert["round"]
    assert isinstance(time_ms, int) and isinstance(rnd, int)
    return [_tx_hash(t) for t in txs], rnd, time_ms


def _tx_hash(entry: Value) -> bytes:
    """A transaction's hash, whole or redacted (an unsigned reader sees stubs, docs/api.md)."""
    if isinstance(entry, dict) and entry.get("redacted") is True:
        h = entry["hash"]
        assert isinstance(h, bytes)
        return h
    return Transaction.from_obj(entry).hash


async def receipt_codes(
    session: aiohttp.ClientSession,
    url: str,
    hashes: Sequence[bytes],
    *,
    parallel: int = 8,
    deadline_s: float = 60.0,
) -> dict[str, int]:
    """Receipt outcome counts (``ok``, the failure code, or ``unchecked`` past the deadline)."""
    counts: dict[str, int] = {}
    todo = iter(hashes)
    deadline = time.monotonic() + deadline_s

    async def worker() -> None:
        for tx_hash in todo:
            code = "unchecked"
            if time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
                    code = await _receipt_code(session, f"{url}/v1/txs/{tx_hash.hex()}")
            counts[code] = counts.get(code, 0) + 1

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return counts


async def _receipt_code(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url, headers=HEADERS, timeout=REQUEST_TIMEOUT) as resp:
        answer = msgpack.unpackb(await resp.read(), raw=False)
    receipt = answer.get("receipt") if isinstance(answer, dict) else None
    return "missing" if not isinstance(receipt, dict) else str(receipt.get("code") or "ok")

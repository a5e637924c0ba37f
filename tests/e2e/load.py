"""A steady, bounded transaction load that knows what the network acknowledged.

Each *sender* is the admin of one founding agency of the devnet genesis; it sends
``identity.register_org`` transactions (one new trader organisation each: constant
cost, no growing record) with consecutive nonces. A background thread:

* submits at a fixed rate, in small batches, to a random node that is up;
* polls receipts; a transaction counts as **acknowledged** once some node
  answered its receipt as committed — those are the ones that must never be lost;
* re-submits (identical bytes) anything not committed after a few seconds to
  another node: a node that crashed takes its mempool with it, and a nonce gap
  would otherwise block that sender for good.

Bounded twice: at most ``max_txs`` transactions and ``max_seconds`` of submitting;
:meth:`Load.drain` then waits (bounded) for the rest. The thread always ends.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ledger.crypto import PrivateKey
from ledger.tx import Transaction
from tests.e2e.cluster import Cluster

RESUBMIT_AFTER_S = 3.0
WINDOW = 64  # outstanding transactions per sender


def agency_admins() -> list[PrivateKey]:
    """The admins of the founding agencies in the devnet genesis (demo organisations)."""
    from devnet.demo import demo_organisations

    admins = []
    for org in demo_organisations():
        if org.kind != "agency":
            continue
        for m in org.members:
            if "admin" in m.roles:
                admins.append(m.key)
    return admins


def register_org_tx(
    admin: PrivateKey, chain_id: str, nonce: int, tag: str, name: str
) -> Transaction:
    """A new trader organisation, registered by a founding agency's ``admin``: load of
    constant cost (no record grows), one distinct id per (tag, admin, nonce)."""
    member = PrivateKey.from_label(f"{tag}/{admin.public_key.hex()[:8]}/{nonce}")
    payload = {
        "id": f"{tag}-{admin.public_key.hex()[:6]}-{nonce}",
        "name": name,
        "kind": "trader",
        "city": "Busan",
        "members": [{"public_key": member.public_key, "name": "admin", "roles": ["admin"]}],
    }
    return Transaction.create(admin, chain_id, "identity.register_org", nonce, payload)


@dataclass
class _Pending:
    tx: Transaction
    first_sent: float
    last_sent: float
    tries: int = 1


@dataclass
class LoadStats:
    submitted: int = 0
    acknowledged: int = 0
    unconfirmed: int = 0
    resubmits: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    failed_receipts: int = 0
    latency_max_s: float = 0.0


class Load:
    """Background load against ``cluster``; use as a context manager or start/stop."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        rate_per_s: float = 20.0,
        max_txs: int = 400,
        max_seconds: float = 60.0,
        senders: int = 4,
        batch: int = 4,
        seed: int = 0,
        tag: str = "e2e",
        window: int = WINDOW,
    ) -> None:
        self.cluster = cluster
        self.rate = rate_per_s
        self.max_txs = max_txs
        self.max_seconds = max_seconds
        self.batch = batch
        self.window = window  # outstanding transactions per sender
        self.rng = random.Random(seed)
        self.tag = tag
        self.senders = agency_admins()[:senders]
        self.next_nonce = {k.public_key: 0 for k in self.senders}
        self.outstanding: dict[bytes, _Pending] = {}
        self.acked: dict[bytes, int] = {}  # tx hash -> height
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._submitting = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial = 0
        cluster.loads.append(self)

    # --- control ------------------------------------------------------------------------

    def start(self) -> Load:
        self._submitting.set()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")
        self._thread.start()
        return self

    def stop_submitting(self) -> None:
        self._submitting.clear()

    def drain(self, timeout_s: float = 60.0) -> int:
        """Stop submitting new work, wait for the outstanding to commit; returns how many
        did not (bounded by ``timeout_s``)."""
        self.stop_submitting()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self.outstanding:
                    break
            time.sleep(0.2)
        self.close()
        with self._lock:
            self.stats.unconfirmed = len(self.outstanding)
            return len(self.outstanding)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def acknowledged(self) -> dict[bytes, int]:
        with self._lock:
            return dict(self.acked)

    # --- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        started = time.monotonic()
        hard_deadline = started + self.max_seconds + 600  # drain can never run away
        next_send = started
        next_poll = started
        while not self._stop.is_set() and time.monotonic() < hard_deadline:
            now = time.monotonic()
            if now - started > self.max_seconds or self.stats.submitted >= self.max_txs:
                self._submitting.clear()
            if self._submitting.is_set() and now >= next_send:
                self._send_new()
                next_send = now + self.batch / self.rate
            if now >= next_poll:
                self._poll()
                self._resubmit()
                next_poll = time.monotonic() + 0.3
            time.sleep(0.02)

    def _new_tx(self, key: PrivateKey) -> Transaction:
        nonce = self.next_nonce[key.public_key]
        self.next_nonce[key.public_key] = nonce + 1
        self._serial += 1
        name = f"Fault suite trader {self._serial}"
        return register_org_tx(key, self.cluster.chain_id, nonce, self.tag, name)

    def _send_new(self) -> None:
        txs: list[Transaction] = []
        with self._lock:
            per_sender = Counter(p.tx.sender for p in self.outstanding.values())
        for _ in range(self.batch):
            if self.stats.submitted + len(txs) >= self.max_txs:
                break
            open_senders = [k for k in self.senders if per_sender[k.public_key] < self.window]
            if not open_senders:
                break
            key = self.rng.choice(open_senders)
            per_sender[key.public_key] += 1
            txs.append(self._new_tx(key))
        if not txs:
            return
        now = time.monotonic()
        with self._lock:
            for tx in txs:
                self.outstanding[tx.hash] = _Pending(tx, now, now)
            self.stats.submitted += len(txs)
        self._submit(txs)

    def _target(self) -> str | None:
        up = [n for n in self.cluster.up() if n not in self.cluster.faulty] or self.cluster.up()
        return self.rng.choice(up) if up else None

    def _submit(self, txs: list[Transaction]) -> None:
        name = self._target()
        if name is None:
            return
        body = json.dumps({"txs": [tx.encode().hex() for tx in txs]}).encode()
        answer = post_json(self.cluster.entry(name).url + "/v1/txs", body)
        if answer is None:
            self.stats.refusals["unreachable"] += 1
            return
        results = answer.get("results")
        if not isinstance(results, list):
            code = answer.get("error", {}).get("code", "?")
            self.stats.refusals[str(code)] += 1
            return
        for r in results:
            if r.get("status") == "rejected":
                self.stats.refusals[str(r["error"]["code"])] += 1

    def _poll(self) -> None:
        with self._lock:
            hashes = list(self.outstanding)[:150]
        if not hashes:
            return
        name = self._target()
        if name is None:
            return
        url = self.cluster.entry(name).url
        for h in hashes:
            answer = _get(f"{url}/v1/txs/{h.hex()}")
            if answer is None:
                return  # node went away: try another next time
            receipt = answer.get("receipt")
            if not isinstance(receipt, dict):
                continue
            with self._lock:
                pending = self.outstanding.pop(h, None)
                if pending is None:
                    continue
                self.acked[h] = int(receipt["height"])
                self.stats.acknowledged += 1
                if answer.get("status") == "failed":
                    self.stats.failed_receipts += 1
                latency = time.monotonic() - pending.first_sent
                self.stats.latency_max_s = max(self.stats.latency_max_s, latency)

    def _resubmit(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [p for p in self.outstanding.values() if now - p.last_sent > RESUBMIT_AFTER_S]
            stale.sort(key=lambda p: (p.tx.sender, p.tx.nonce))
            stale = stale[:200]
            for p in stale:
                p.last_sent = now
                p.tries += 1
            self.stats.resubmits += len(stale)
        for i in range(0, len(stale), 50):
            self._submit([p.tx for p in stale[i : i + 50]])


def post_json(url: str, body: bytes) -> dict[str, Any] | None:
    """POST a JSON body; the JSON map the node answered (error answers too), None when
    it did not answer."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    return _fetch(req, unreadable=None)


def _get(url: str) -> dict[str, Any] | None:
    return _fetch(urllib.request.Request(url), unreadable={})


def _fetch(
    req: urllib.request.Request, *, unreadable: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The JSON map the node answered (error answers too); ``unreadable`` when the answer
    is not a JSON map, None when the node did not answer."""
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            doc = json.loads(exc.read())
        except ValueError:
            return unreadable
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else unreadable

"""A load near what the network commits, for figures taken under it (issue 18's throughput
dip): pre-signed ``identity.register_org`` transactions posted in large batches, in nonce
order per sender, without polling a receipt per transaction — the fault suite's
:class:`~tests.e2e.load.Load` polls each receipt over HTTP and so tops out well below what
the nodes commit.

What a node accepted (``pending``, or ``duplicate``: a resend of what it already holds) is
remembered: every accepted transaction must end up in
the chain exactly once. A refused one (429, a full mempool) and every later one of its
sender is sent again on the next tick, so no sender is left with a nonce gap. Bounded by
``per_sender`` transactions per sender and ``max_seconds`` of sending; the thread always ends.
"""

from __future__ import annotations

import json
import threading
import time

from ledger.tx import Transaction
from tests.e2e.cluster import Cluster
from tests.e2e.load import agency_admins, post_json, register_org_tx


class Flood:
    """Batches to node ``via`` from the first ``senders`` agency admins; start, then stop."""

    def __init__(
        self,
        cluster: Cluster,
        via: str,
        *,
        senders: int,
        per_sender: int = 4000,
        batch: int = 100,
        rate_per_s: float = 1000.0,
        max_seconds: float = 60.0,
    ) -> None:
        self.url = cluster.entry(via).url + "/v1/txs"
        self.rate, self.batch, self.max_seconds = rate_per_s, batch, max_seconds
        chain = cluster.chain_id
        self.queues: list[list[Transaction]] = [
            [register_org_tx(key, chain, n, "flood", f"Flood {n}") for n in range(per_sender)]
            for key in agency_admins()[:senders]
        ]
        self.cursor = [0] * senders  # per sender: the first transaction not accepted yet
        self.accepted: set[bytes] = set()
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="flood")

    def start(self) -> Flood:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        pause = self.batch * len(self.queues) / self.rate
        while not self._stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            for i, queue in enumerate(self.queues):
                self._send(i, queue[self.cursor[i] : self.cursor[i] + self.batch])
            if all(c == len(q) for c, q in zip(self.cursor, self.queues, strict=True)):
                return
            self._stop.wait(max(0.0, pause - (time.monotonic() - began)))

    def _send(self, sender: int, txs: list[Transaction]) -> None:
        if not txs:
            return
        body = json.dumps({"txs": [tx.encode().hex() for tx in txs]}).encode()
        results = (post_json(self.url, body) or {}).get("results")
        if not isinstance(results, list):
            self.refused += len(txs)  # mempool full, rate limited, unreachable: again later
            return
        for tx, result in zip(txs, results, strict=False):
            code = (result.get("error") or {}).get("code")
            if result.get("status") != "pending" and code != "duplicate":  # sent before
                self.refused += 1
                return  # this one and every later one of the sender: again next tick
            self.accepted.add(tx.hash)
            self.cursor[sender] += 1

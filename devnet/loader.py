"""Load the demo scenario into a running devnet, phase by phase, with progress."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from devnet import processes
from devnet.demo import demo_phases
from devnet.layout import DevnetError, Network, NodeEntry
from ledger.tx import Transaction
from node.api.waits import NOT_NOW, Headers, error_code, retry_after_s

BATCH = 200
PHASE_TIMEOUT_S = 120.0


def load_demo(network: Network, *, seed: int | None = None) -> int:
    """Submit every demo phase and wait for each to commit; returns the transactions loaded.

    Loading is recorded in ``<home>/demo.json``; a second call on the same network
    does nothing (the demo's nonces are already used).
    """
    marker = os.path.join(network.home, "demo.json")
    write_demo_keys(network)
    if os.path.exists(marker):
        return 0
    start_ms = int(time.time() * 1000)
    phases = (
        demo_phases(network.chain_id, start_time_ms=start_ms)
        if seed is None
        else demo_phases(network.chain_id, seed, start_ms)
    )
    total = sum(len(p) for p in phases)
    failed: list[str] = []
    with Progress(
        TextColumn("loading the demo"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} tx/s"),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("demo", total=total, rate="-")
        began = time.monotonic()
        for number, phase in enumerate(phases, 1):
            for i in range(0, len(phase), BATCH):
                node = network.nodes[(i // BATCH) % len(network.nodes)]
                _submit(node, phase[i : i + BATCH])
            failed += _wait_committed(network.nodes[0], phase, number)
            progress.advance(task, len(phase))
            progress.update(
                task, rate=f"{progress.tasks[0].completed / (time.monotonic() - began):.0f}"
            )
    if failed:
        raise DevnetError(f"{len(failed)} demo transactions failed, e.g. {failed[0]}")
    with open(marker, "w", encoding="utf-8") as f:
        json.dump({"start_time_ms": start_ms, "transactions": total}, f)
    return total


DEMO_KEYS = {"customs-officer": "customs_officer_label", "auditor": "auditor_label"}


def demo_key_path(network: Network, role: str) -> str:
    return os.path.join(network.home, "keys", f"{role}.json")


def write_demo_keys(network: Network) -> None:
    """Key files (mode 0600) for a demo customs officer and auditor, for signed reads."""
    from devnet.demo import demo_summary
    from ledger.crypto import PrivateKey
    from ledger.keyfile import make_private_dir, write_key_file

    summary = demo_summary()
    make_private_dir(os.path.join(network.home, "keys"))
    for role, field in DEMO_KEYS.items():
        path = demo_key_path(network, role)
        if not os.path.exists(path):
            write_key_file(path, PrivateKey.from_label(str(summary[field])))


def _submit(node: NodeEntry, txs: list[Transaction]) -> None:
    """Send a phase's batch; what the node refuses "not now" (429, or a code of
    :data:`~node.api.waits.NOT_NOW` on an item) is sent again after ``Retry-After``, in
    order."""
    for _attempt in range(SUBMIT_ATTEMPTS):
        answer, retry_after = _post_batch(node, txs)
        if answer is None:
            time.sleep(retry_after)
            continue
        results = answer.get("results", [])
        later = [tx for tx, r in zip(txs, results, strict=True) if _not_now(r)]
        rejected = [r for r in results if r.get("status") != "pending" and not _not_now(r)]
        if rejected:
            raise DevnetError(f"{node.name} rejected demo transactions: {rejected[0]}")
        if not later:
            return
        txs = later
        time.sleep(retry_after)
    raise DevnetError(f"{node.name} stayed overloaded for {SUBMIT_ATTEMPTS} attempts")


SUBMIT_ATTEMPTS = 30


def _not_now(result: dict[str, Any]) -> bool:
    return error_code(result) in NOT_NOW


def _post_batch(node: NodeEntry, txs: list[Transaction]) -> tuple[dict[str, Any] | None, float]:
    """The node's answer (None: 429, come back later) and the seconds it asked to wait."""
    body = json.dumps({"txs": [tx.encode().hex() for tx in txs]}).encode()
    req = urllib.request.Request(
        node.url + "/v1/txs", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read()), _retry_after(resp.headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            return None, _retry_after(exc.headers)
        raise DevnetError(f"{node.name} refused the demo batch: {exc.read()[:300]!r}") from None


def _retry_after(headers: Headers | None) -> float:
    return retry_after_s(headers, default=0.5, lo=0.1, hi=10.0)


def _wait_committed(node: NodeEntry, phase: list[Transaction], number: int) -> list[str]:
    """Wait until every transaction of the phase has a receipt; return the failed ones."""
    pending = {tx.hash.hex() for tx in phase}
    failed: list[str] = []
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while pending:
        if time.monotonic() > deadline:
            raise DevnetError(
                f"demo phase {number}: {len(pending)} transactions not committed "
                f"after {PHASE_TIMEOUT_S:.0f} s"
            )
        for tx_hash in list(pending):
            try:
                answer = processes.get_json(f"{node.url}/v1/txs/{tx_hash}", timeout_s=5)
            except (OSError, ValueError):
                break  # still pending (202 raises) or node busy: poll again
            receipt = answer.get("receipt")
            if receipt is None:
                break
            pending.discard(tx_hash)
            if answer.get("status") == "failed":  # an unsigned read: the receipt may be redacted
                code = receipt.get("code", "failed")
                failed.append(f"{tx_hash[:16]}…: {code}: {receipt.get('message', '(redacted)')}")
        else:
            continue
        time.sleep(0.2)
    return failed

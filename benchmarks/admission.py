"""What junk costs a node: CPU spent on transactions from a sender that is not registered.

``python -m benchmarks.admission`` (also part of ``make bench-core``) starts one real
single-validator node (``benchmarks.cluster``, the node's default API limits), sends it
batches of 10,000 transactions signed by keys that are not members, and measures the
CPU the node process and its signature worker spent on each, from just before the
request is sent until its answer has arrived. CPU comes from every thread's
``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds; ``stat`` counts only whole ticks of
10 ms), for the node and its worker processes. Each repetition uses a fresh key (no
cache helps) and its own source address (127.0.0.x: its own rate-limit buckets).

Scenarios, each a batch of ``--txs`` transactions (default 10,000):

* ``unsigned``: one unsigned ``POST /v1/txs`` of transactions with valid signatures,
  their nonces inside the nonce window (0-199);
* ``bad_sig``: the same with one bit of each signature flipped;
* ``member_signed``: the request signed by a registered member key, the transactions
  from an unregistered one (a member may carry a full batch);
* ``small_batches``: the same number of transactions in unsigned batches of 200 (the
  demo loader's size), so that a cap on batch size cannot hide a per-transaction cost;
* ``many_senders``: each transaction from its own unregistered key (no lookup is shared),
  in unsigned batches of 2,000 (the default ``[api] unsigned_batch_max``).

Figures (medians over ``--repeats``): ``admission_<scenario>_cpu_ms``; the target is
``admission_unsigned_cpu_ms`` < 50 ms. The JSON also holds every run's
answer status and the node's idle CPU rate, for judging noise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import msgpack

from benchmarks.cluster import Cluster, _descendants, task_files
from devnet.demo_plan import member_label
from ledger.crypto import PrivateKey
from ledger.tx import Transaction
from node.api.auth import sign_request
from node.config import APIConfig, split_host_port

TARGET_MAX_MS = {"admission_unsigned_cpu_ms": 50.0}
SCENARIOS = ("unsigned", "bad_sig", "member_signed", "small_batches", "many_senders")
SMALL_BATCH = 200
MANY_BATCH = 2000
MEMBER = member_label("busan-customs", "admin")  # a founding member of every devnet


def thread_cpu_ns(pid: int) -> int:
    """CPU time of every live thread of ``pid`` and of its descendants, in nanoseconds."""
    total = 0
    for proc in (pid, *_descendants(pid)):
        for text in task_files(proc, "schedstat"):
            try:
                total += int(text.split()[0])
            except (ValueError, IndexError):
                continue
    return total


@dataclass
class Run:
    scenario: str
    cpu_ms: float
    wall_ms: float
    statuses: dict[str, int]  # HTTP status (and error code) -> requests


def junk_txs(
    chain_id: str, label: str, n: int, *, bad_sig: bool = False, many: bool = False
) -> list[bytes]:
    """``n`` canonical transactions from the unregistered key ``label`` (``many``: each
    from its own key)."""
    key = PrivateKey.from_label(label)
    out = []
    for i in range(n):
        if many:
            key = PrivateKey.from_label(f"{label}/{i}")
        nonce = i % 200  # inside the nonce window: refused for who sent it, not its nonce
        payload = {
            "id": f"JUNK-{i:06d}",
            "consignor": "nobody",
            "consignee": "nobody",
            "goods": [{"hs_code": "851712", "description": "nothing at all", "quantity": 1}],
        }
        tx = Transaction.create(key, chain_id, "shipment.declare", nonce, payload)
        if bad_sig:  # one bit of R flipped: well formed, and only a full check refuses it
            forged = bytes([tx.signature[0] ^ 1]) + tx.signature[1:]
            tx = Transaction(tx.kind, chain_id, tx.sender, nonce, payload, forged)
        out.append(tx.encode())
    return out


def post(
    api: str, body: bytes, source: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """POST a msgpack batch from ``source``; (status, error code or '' for results)."""
    host, port = split_host_port(api)
    conn = http.client.HTTPConnection(host, port, timeout=60, source_address=(source, 0))
    try:
        conn.request(
            "POST",
            "/v1/txs",
            body,
            {
                "Content-Type": "application/msgpack",
                "Accept": "application/msgpack",
                **(headers or {}),
            },
        )
        response = conn.getresponse()
        answer = msgpack.unpackb(response.read(), raw=False)
        status = response.status
    finally:
        conn.close()
    code = ""
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        code = str(answer["error"].get("code", "?"))
    elif isinstance(answer, dict) and isinstance(answer.get("results"), list):
        codes = Counter((r.get("error") or {}).get("code", "pending") for r in answer["results"])
        code = ",".join(f"{c}x{n}" for c, n in sorted(codes.items()))
    return status, code


def node_public_key(api: str) -> bytes:
    """The node's public key, which a signed request names (node.api.auth)."""
    host, port = split_host_port(api)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/v1/status", headers={"Accept": "application/msgpack"})
        status = msgpack.unpackb(conn.getresponse().read(), raw=False)
    finally:
        conn.close()
    key = status["public_key"]
    assert isinstance(key, bytes)
    return key


def requests_for(
    scenario: str, raws: list[bytes], member: PrivateKey, chain_id: str, node_key: bytes
) -> tuple[list[bytes], list[dict[str, str]]]:
    """The bodies (and their extra headers) that send ``raws`` in ``scenario``."""
    if scenario in ("small_batches", "many_senders"):
        size = SMALL_BATCH if scenario == "small_batches" else MANY_BATCH
        bodies = [
            msgpack.packb({"txs": raws[i : i + size]}, use_bin_type=True)
            for i in range(0, len(raws), size)
        ]
        return bodies, [{} for _ in bodies]
    body = msgpack.packb({"txs": raws}, use_bin_type=True)
    if scenario != "member_signed":
        return [body], [{}]
    now_ms = int(time.time() * 1000)
    return [body], [sign_request(member, chain_id, node_key, "POST", "/v1/txs", body, now_ms)]


def measure(
    pid: int, send: Callable[[], list[tuple[int, str]]]
) -> tuple[float, float, Counter[str]]:
    before_cpu, before = thread_cpu_ns(pid), time.perf_counter()
    answers = send()
    wall = time.perf_counter() - before
    cpu = thread_cpu_ns(pid) - before_cpu
    return cpu / 1e6, wall * 1000, Counter(f"{s} {c}".strip() for s, c in answers)


def run(
    txs: int = 10_000, repeats: int = 5, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Start a node, measure every scenario ``repeats`` times, stop it; figures and runs."""
    cluster = Cluster(1, settings=_default_api_settings())
    runs: list[Run] = []
    try:
        cluster.start()
        if not cluster.wait_height(1, 60):
            raise RuntimeError("the benchmark node did not start:\n" + cluster.log_tail())
        entry = cluster.nodes[0]
        pid = entry.pid
        assert pid is not None
        target = Target(entry.api, pid, cluster.chain_id, node_public_key(entry.api))
        member = PrivateKey.from_label(MEMBER)
        _warm_up(target, member)
        idle_ms_per_s = _idle_cpu_ms_per_s(pid)
        source = 10
        for rep in range(repeats):
            for scenario in SCENARIOS:
                addr = f"127.0.0.{source}"
                source = source + 1 if source < 250 else 10
                runs.append(_run_scenario(target, member, scenario, rep, txs, addr, log))
                time.sleep(0.3)
    finally:
        cluster.close()
    return {
        "txs_per_batch": txs,
        "repeats": repeats,
        "idle_cpu_ms_per_s": round(idle_ms_per_s, 2),
        "figures": _median_figures(runs),
        "targets_max": TARGET_MAX_MS,
        "runs": [r.__dict__ for r in runs],
    }


@dataclass(frozen=True, slots=True)
class Target:
    """The node under measure: its API, process id, chain and public key."""

    api: str
    pid: int
    chain_id: str
    node_key: bytes


def _default_api_settings() -> tuple[str, ...]:
    """Every numeric ``[api]`` limit at its default, as ``--set`` overrides."""
    defaults = APIConfig()
    return tuple(
        f"api.{f.name}={getattr(defaults, f.name)!r}"
        for f in fields(defaults)
        if isinstance(getattr(defaults, f.name), int | float)
    )


def _warm_up(target: Target, member: PrivateKey) -> None:
    """Start the signature worker (the first batch it checks does) before anything is timed."""
    warm = [
        Transaction.create(
            member,
            target.chain_id,
            "identity.register_member",
            n,
            {
                "public_key": PrivateKey.from_label(f"bench-admission/warm/{n}").public_key,
                "name": f"warm {n}",
                "roles": ["customs"],
            },
        ).encode()
        for n in range(32)
    ]
    post(target.api, msgpack.packb({"txs": warm}, use_bin_type=True), "127.0.0.1")
    post(
        target.api,
        msgpack.packb({"txs": junk_txs(target.chain_id, "warm-junk", 100)}, use_bin_type=True),
        "127.0.0.1",
    )
    time.sleep(1.0)


def _idle_cpu_ms_per_s(pid: int) -> float:
    """The node's CPU rate with nothing to do, over two seconds (the noise floor)."""
    idle_before = thread_cpu_ns(pid)
    time.sleep(2.0)
    return (thread_cpu_ns(pid) - idle_before) / 1e6 / 2.0


def _run_scenario(
    target: Target,
    member: PrivateKey,
    scenario: str,
    rep: int,
    txs: int,
    addr: str,
    log: Callable[[str], None],
) -> Run:
    """One repetition of ``scenario``: a fresh key's junk sent from ``addr``, measured."""
    label = f"bench-admission/{scenario}/{rep}/{time.time_ns()}"
    raws = junk_txs(
        target.chain_id,
        label,
        txs,
        bad_sig=scenario == "bad_sig",
        many=scenario == "many_senders",
    )
    bodies, heads = requests_for(scenario, raws, member, target.chain_id, target.node_key)

    def send() -> list[tuple[int, str]]:
        return [post(target.api, b, addr, h) for b, h in zip(bodies, heads, strict=True)]

    cpu_ms, wall_ms, statuses = measure(target.pid, send)
    log(
        f"  {scenario:<14} rep {rep}: node CPU {cpu_ms:8.1f} ms, "
        f"wall {wall_ms:8.1f} ms, {dict(statuses)}"
    )
    return Run(scenario, cpu_ms, wall_ms, dict(statuses))


def _median_figures(runs: list[Run]) -> dict[str, float]:
    """``admission_<scenario>_cpu_ms``: the median node CPU of each scenario's runs."""
    figures: dict[str, float] = {}
    for scenario in SCENARIOS:
        values = [r.cpu_ms for r in runs if r.scenario == scenario]
        if values:
            figures[f"admission_{scenario}_cpu_ms"] = round(statistics.median(values), 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=10_000, help="transactions per scenario")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="bench-admission.json", help="where to write figures")
    args = parser.parse_args()
    result = run(args.txs, args.repeats)
    doc = {"cores": os.cpu_count(), "python": platform.python_version(), **result}
    for name, value in result["figures"].items():
        target = TARGET_MAX_MS.get(name)
        verdict = "" if target is None else ("ok" if value < target else "ABOVE")
        limit = "" if target is None else f"(target < {target:g} ms) {verdict}"
        print(f"{name:<36} {value:10.1f} ms {limit}")
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()

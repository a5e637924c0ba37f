"""What complete searches cost: state rows per write, bytes and client time per query.

``python -m tests.unit.benchmarks.search_cost`` runs in-process (no network, about a minute of
CPU) and prints a JSON document; docs/formats-state.md §6 quotes it.

* **per write**: the demo scenario (``devnet.demo``, 1,216 transactions) executed with
  every transaction's state writes counted by kind, split into search-bucket rows
  (``search/…``, :mod:`contracts.search_buckets`) and every other row;
* **per query**: a chain (the CLI tests' kit, ``tests/unit/cli/kit.py``) where one
  organisation is consignee of 1,000 shipments; ``GET /v1/shipments?party=…`` pages of
  100 and 1,000 built as the API builds them (:meth:`node.api.proven.ProvenState.page`),
  their msgpack size, the size of the same records without the completeness proofs
  (head and slots), and the client's time to check a page
  (:func:`lightclient.search.verify_shipment_search` and the page count rule), the
  median of ``REPEATS`` runs of ``time.process_time``.

Timings on a shared machine are noisy: say under what load they were taken.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from typing import Any

from contracts import context as contract_context
from contracts import search_buckets as sb
from contracts import state_keys as sk
from contracts.shipment_search import ShipmentFilter
from devnet.demo import DEFAULT_SEED, DEFAULT_START_MS, demo_genesis, demo_phases
from ledger.encoding import Value, encode
from lightclient.answers import check_whole
from lightclient.search import Paging, verify_shipment_search
from node.api.proven import ProvenState

SHIPMENTS = 1_000
PER_BLOCK = 200
REPEATS = 5


def rows_per_kind() -> dict[str, dict[str, float]]:
    """Mean state rows written per transaction of each kind: search rows and the rest."""
    from tests.unit.contracts.harness import Chain

    counts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    original = contract_context.TxContext.commit

    def counting(ctx: contract_context.TxContext) -> None:
        search = sum(1 for k in ctx.writes if k.startswith(sb.PREFIX))
        counts[ctx.tx.kind].append((search, len(ctx.writes) - search))
        original(ctx)

    setattr(contract_context.TxContext, "commit", counting)  # noqa: B010 (measuring only)
    try:
        chain = Chain(genesis=demo_genesis("cityledger-demo"))
        chain.time_ms = DEFAULT_START_MS
        for phase in demo_phases("cityledger-demo", DEFAULT_SEED, DEFAULT_START_MS):
            chain.block(phase)
    finally:
        setattr(contract_context.TxContext, "commit", original)  # noqa: B010
    return {
        kind: {
            "txs": len(rows),
            "search_rows": round(statistics.mean(r[0] for r in rows), 2),
            "other_rows": round(statistics.mean(r[1] for r in rows), 2),
        }
        for kind, rows in sorted(counts.items())
    }


def query_costs() -> dict[str, Any]:
    """Bytes on the wire and client check time of a 100- and a 1,000-shipment page."""
    from contracts.codes import with_check_digit
    from tests.unit.cli.kit import CliNode, declare_payload, key

    node = CliNode()
    reader = key("officer").public_key  # a customs officer: reads every member
    for first in range(0, SHIPMENTS, PER_BLOCK):
        txs = []
        for n in range(first, first + PER_BLOCK):
            container = with_check_digit(f"MSCU{n:06d}")
            txs.append(
                node.tx("acme", "shipment.declare", declare_payload(f"S-{n:05d}", container))
            )
        node.commit(txs)
    state = ProvenState(node, node.queries.latest())
    bucket = sb.SHIPMENT_PARTY.bucket("globex")
    out: dict[str, Any] = {}
    for limit in (100, 1_000):
        page = state.page(bucket, 0, limit, lambda _key: True)
        answer = state.answer(**page, reader=state.item(sk.member_key(reader)))
        records_only = state.answer(shipments=[s["member"] for s in _slots(answer)])
        out[str(limit)] = {
            "bytes": len(encode(answer)),
            "bytes_without_completeness": len(encode(records_only)),
            "verify_ms": _verify_ms(answer, node, limit, reader),
        }
    return out


def _slots(answer: dict[str, Value]) -> list[dict[str, Value]]:
    slots = answer["slots"]
    assert isinstance(slots, list)
    return [s for s in slots if isinstance(s, dict)]


def _verify_ms(answer: dict[str, Value], node: Any, limit: int, reader: bytes) -> float:
    search = ShipmentFilter(party="globex")
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        view = verify_shipment_search(answer, node.genesis, search, Paging(0, limit), reader)
        check_whole(view.page.count)
        times.append((time.process_time() - start) * 1000)
        assert len(view.found) == limit
    return round(statistics.median(times), 1)


def main() -> None:
    print(json.dumps({"rows_per_tx": rows_per_kind(), "query": query_costs()}, indent=2))


if __name__ == "__main__":
    main()

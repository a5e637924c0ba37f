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
  median of ``REPEATS`` runs of ``time.process_time``;
* **the organisation directory** (a name search reads it whole): ``ORGS`` organisations
  registered, ``GET /v1/orgs`` pages of 1,000 built as the API builds them, their size,
  and the client's time to check the page, put the directory together
  (:func:`lightclient.orgs.whole_directory`) and match a name over it.

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
ORGS = 1_000
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


def directory_costs() -> dict[str, Any]:
    """Bytes and client time of the whole directory once ``ORGS`` more organisations
    registered (each with one member), read as one page of 1,000 and the rest."""
    from lightclient.orgs import whole_directory
    from lightclient.search import verify_org_directory
    from tests.unit.cli.kit import CliNode, key

    node = CliNode()
    for first in range(0, ORGS, PER_BLOCK):
        txs = []
        for n in range(first, first + PER_BLOCK):
            admin = {"public_key": key(f"org-{n}").public_key, "name": "admin",
                     "roles": ["admin", "trader"]}  # fmt: skip
            payload = {"id": f"trader-{n:04d}", "name": f"Trader {n:04d} Co., Ltd.",
                       "kind": "trader", "city": "Busan", "members": [admin]}  # fmt: skip
            txs.append(node.tx("customs-admin", "identity.register_org", payload))
        node.commit(txs)
    state = ProvenState(node, node.queries.latest())
    answers = [
        state.answer(**state.page(sb.ORGANISATIONS, start, 1_000, lambda _key: True))
        for start in range(0, sb.head_count(state.get(sb.ORGANISATIONS.head_key)), 1_000)
    ]
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        views = [verify_org_directory(a, node.genesis, Paging(i * 1_000, 1_000))
                 for i, a in enumerate(answers)]  # fmt: skip
        matched = whole_directory(views).matching("trader 09")
        times.append((time.process_time() - start) * 1000)
        assert len(matched) == 100
    return {
        "organisations": sum(len(_slots(a)) for a in answers),
        "pages": len(answers),
        "bytes": sum(len(encode(a)) for a in answers),
        "verify_and_match_ms": round(statistics.median(times), 1),
    }


def main() -> None:
    costs = {"rows_per_tx": rows_per_kind(), "query": query_costs()}
    print(json.dumps({**costs, "directory": directory_costs()}, indent=2))


if __name__ == "__main__":
    main()

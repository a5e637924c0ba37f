"""`bench query` asks for receipts its customs officer may read: a redacted answer for
an energy transaction is the read rules working, not a failed query."""

from __future__ import annotations

from benchmarks.query import readable_receipts
from benchmarks.workload import bench_workload


def test_the_officer_asks_for_every_receipt_customs_may_read_and_no_energy_one() -> None:
    work = bench_workload(4, 200, name="mix", seed=7)
    officer = work.population.actors["customs"][0]
    chosen = set(readable_receipts(work, officer))
    setup = [tx for phase in work.setup for tx in phase]
    kinds = {tx.kind.split(".")[0] for tx in setup}
    assert {"energy", "shipment", "permit", "gov"} <= kinds  # the mix has all of them
    for tx in setup:
        readable = not tx.kind.startswith("energy.")  # customs is no party to a trade
        assert (tx.hash in chosen) == readable, tx.kind

"""How the bench turns what happened to each transaction into its figures."""

from __future__ import annotations

from benchmarks.driver import ACCEPTED, BlockWatch, DriveLog
from benchmarks.results import figures, outcome
from benchmarks.workload import Item


def test_latency_is_given_from_the_first_send_and_from_the_accepting_answer() -> None:
    work = [Item(bytes([i]) * 8, bytes([i]) * 32, 0, "shipment.milestone", bytes([i]) * 32)
            for i in range(3)]  # fmt: skip
    log = DriveLog.of(3)
    log.sent = 3
    log.sched = [10.0, 10.0, 10.0]
    log.codes = [ACCEPTED, ACCEPTED, "overloaded"]
    log.accepted_at = [10.1, 13.0, 0.0]  # the second was refused and sent again for 3 s
    watch = BlockWatch("http://node", announced={5: 14.0})
    where = {work[0].hash: 5, work[1].hash: 5}
    result = outcome(work, log, where, [watch])
    assert result.committed == 2
    assert [round(x) for x in result.latencies_ms] == [4000, 4000]
    assert [round(x) for x in result.accepted_latencies_ms] == [1000, 3900]
    doc = figures(result, log, {5: ([work[0].hash, work[1].hash], 0, 14_000)}, [], {
        "ceiling_tps": 1000})  # fmt: skip
    assert doc["p99_ms"] >= 3999 and 1000 <= doc["accepted_p50_ms"] <= 3900
    assert doc["accepted_p99_ms"] >= 3800

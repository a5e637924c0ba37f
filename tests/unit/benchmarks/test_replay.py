"""``python -m benchmarks.replay``: a stopped node's chain caught up in one process, as
a node's syncer does it (every certificate checked, every block re-executed to its
header), with and without the signature worker and the writer thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.replay import _foreign_threads_cpu, _task_cpu, replay
from cli.bench_cmd import bench
from ledger import verdicts


@pytest.mark.slow
def test_replay_catches_up_the_whole_chain_and_the_worker_takes_the_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = tmp_path / "net"
    args = ["audit", "--txs", "400", "--block-txs", "200", "--keep", str(net), "--in-memory"]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    home = (net / "AUDITED_HOME").read_text().strip()
    table = verdicts.GoodSignatures()
    monkeypatch.setattr("ledger.crypto.GOOD", table)
    monkeypatch.setattr("node.sigcache.GOOD", table)
    full = replay(home, None, 3, None)  # batches of 3 blocks: several frames
    assert full["blocks"] >= 3 and full["txs"] > 400
    assert full["worker_us_per_tx"] > 0 and 0 < table.hits <= len(table)
    plain = replay(home, None, 200, None, worker=False, behind=False)
    assert (plain["blocks"], plain["txs"]) == (full["blocks"], full["txs"])
    assert plain["worker_us_per_tx"] == 0
    first = replay(home, 2, 200, None)  # --to below one request's batch: no block past it
    assert first["blocks"] == 2 and 0 < first["txs"] < full["txs"]
    for figures in (full, plain):  # the process's CPU, split by thread
        parts = figures["loop_us_per_tx"] + figures["leveldb_us_per_tx"]
        assert figures["leveldb_us_per_tx"] >= 0
        assert parts + figures["other_us_per_tx"] == pytest.approx(
            figures["process_us_per_tx"], abs=0.3
        )


def test_threads_python_did_not_start_are_counted_from_their_first_reading() -> None:
    before = {10: 1.0, 11: 2.0, 12: 4.0}
    after = {10: 1.5, 11: 3.0, 13: 0.5}  # 12 ended; 13 started in between
    assert _foreign_threads_cpu(before, after, python={10}) == pytest.approx(1.0 + 0.5)


def test_each_thread_of_this_process_is_read() -> None:
    tasks = _task_cpu()
    assert threading.get_native_id() in tasks
    assert all(cpu >= 0 for cpu in tasks.values())

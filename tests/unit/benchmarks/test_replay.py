"""``python -m benchmarks.replay``: a stopped node's chain caught up in one process, as
a node's syncer does it (every certificate checked, every block re-executed to its
header), with and without the signature worker and the writer thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.replay import replay
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

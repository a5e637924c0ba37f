"""``cityledger bench audit``: a real chain on a stopped node's home, audited by the real
command in its own process; the JSON carries the keys the acceptance checks read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.bench_cmd import bench


def _bench(tmp_path: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / f"audit{len(extra)}.json"
    args = ["audit", "--txs", "200", "--block-txs", "400", "--json", str(out)]
    result = CliRunner().invoke(bench, [*args, "--keep", str(tmp_path / "net"), *extra])
    assert result.exit_code == 0, result.output
    doc: dict = json.loads(out.read_text())  # type: ignore[type-arg]
    return doc


@pytest.mark.slow
def test_bench_audit_streams_and_reports_rate_and_memory(tmp_path: Path) -> None:
    streamed = _bench(tmp_path, "--streaming")
    assert streamed["streamed"] is True and streamed["segments"] == 0
    assert streamed["txs"] > 200, "the population's setup, then the mix's valid items"
    assert streamed["heights"] == -(-streamed["txs"] // 400)
    assert streamed["rows_compared"] > 10 * streamed["txs"]
    assert streamed["audit_tps"] > 0 and streamed["audit_s"] > 0
    assert 20 < streamed["audit_peak_rss_mb"] < 1000
    assert 10 < streamed["audit_peak_anon_mb"] <= streamed["audit_peak_rss_mb"]
    assert streamed["audit_peak_anon_tree_mb"] >= streamed["audit_peak_anon_mb"]
    assert streamed["store_mb"] > 0 and streamed["build_s"] > 0
    again = _bench(tmp_path, "--in-memory", "--workers", "1")  # the same chain, kept
    assert again["build_s"] == 0 and again["txs"] == streamed["txs"]
    assert again["streamed"] is False

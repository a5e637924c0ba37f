"""`cityledger bench` against a real one-validator network: its accounting of what was
sent, committed and refused, its JSON, its `--set` overrides, and that it stops the
processes it started when it is itself stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.config import Home

CLI = [sys.executable, "-m", "cli.main", "bench"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_small_run_commits_every_valid_transaction_and_refuses_the_invalid(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run.json"
    home = tmp_path / "net"
    done = subprocess.run(
        [*CLI, "run", "--validators", "1", "--txs", "400", "--rate", "200",
         "--check-receipts", "20", "--home", str(home), "--keep",
         "--set", "storage.block_cache_mb=16", "--json", str(out)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["sent"] == 400
    assert doc["invalid_sent"] == 20 and doc["invalid_rejected"] == 20
    assert doc["invalid_committed"] == 0
    assert doc["committed"] == 380 and doc["lost"] == 0
    assert doc["receipts_checked"] == {"ok": 20}
    for key in ("committed_tps", "p50_ms", "p99_ms", "ceiling_tps", "efficiency", "peak_rss_mb"):
        assert doc[key] > 0, key
    assert doc["efficiency"] == pytest.approx(doc["committed_tps"] / doc["ceiling_tps"], abs=0.001)
    # one validator proposes every height: all its phases, its build among them
    phases = doc["height_phase_ms"]
    assert set(phases) == {"propose", "wait", "build", "validate", "prevotes", "precommits"}
    assert all(ms >= 0 for ms in phases.values()) and phases["build"] <= phases["propose"]
    assert doc["options"]["settings"] == ["storage.block_cache_mb=16"]
    config = Home(str(home / "net" / "busan-0")).load_config()
    assert config.storage.block_cache_mb == 16  # the override reached the node's config


def test_a_bad_setting_is_refused_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "run", "--validators", "1", "--txs", "10", "--home", str(tmp_path / "n"),
         "--set", "storage.block_cache_mb=2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "block_cache_mb must be between 8 and 65536, not 2" in done.stderr
    assert not (tmp_path / "n").exists()


def test_a_terminated_bench_stops_the_nodes_it_started(tmp_path: Path) -> None:
    home = tmp_path / "net"
    bench = subprocess.Popen(
        [*CLI, "run", "--validators", "1", "--txs", "5000", "--rate", "50",
         "--home", str(home), "--keep"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pid_file = home / "net" / "busan-0" / "node.pid"
    try:
        deadline = time.monotonic() + 120
        assert bench.stdout is not None
        for line in bench.stdout:  # until the timed phase has begun
            if "timed phase" in line or time.monotonic() > deadline:
                break
        node_pid = int(pid_file.read_text())
        assert alive(node_pid)
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) != 0
        deadline = time.monotonic() + 30
        while alive(node_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(node_pid), "the node the bench started outlived it"
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()

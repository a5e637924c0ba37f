"""``cityledger devnet up`` stopped with SIGTERM while its network is still starting
stops every node it started (it left them running before: its SIGTERM handler was set
only once the network was up)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devnet import processes
from devnet.layout import Network


def _started_pids(home: Path, count: int, timeout_s: float) -> list[int]:
    """The node pids ``devnet up`` recorded, once all ``count`` are there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            nodes = json.loads((home / "network.json").read_text())["nodes"]
        except (OSError, ValueError, KeyError):
            nodes = []
        pids = [n["pid"] for n in nodes if n.get("pid")]
        if len(pids) == count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"devnet up did not record {count} node pids in {timeout_s} s")


def test_sigterm_while_the_network_starts_stops_every_node(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    command = [sys.executable, "-m", "cli.main", "devnet", "up", "--home", str(home),
               "--validators", "4", "--base-port", str(processes.free_base_port()),
               "--timeout", "120"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as up:
        try:
            pids = _started_pids(home, 4, timeout_s=60)
            os.kill(up.pid, signal.SIGTERM)  # the nodes are still importing: no commit yet
            out, _ = up.communicate(timeout=90)
            left_running = [pid for pid in pids if processes.is_running(pid)]
        finally:
            if up.poll() is None:
                up.kill()
            processes.stop_all(Network.load(str(home)))  # whatever it left, by pid
    assert "press Ctrl-C" not in out.decode(), "the signal was meant for the start-up"
    assert up.returncode == 130 and out.decode().endswith("interrupted\n"), out.decode()
    assert left_running == []

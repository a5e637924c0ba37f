"""``cityledger devnet up`` stopped with SIGTERM while its network is still starting
stops every node it started (it left them running before: its SIGTERM handler was set
only once the network was up)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from devnet import processes
from devnet.layout import DevnetError, Network
from tests.integration.netkit import wait_until


def _recorded_pids(home: Path) -> list[int]:
    """The node pids ``devnet up`` has recorded so far (none while it writes the file)."""
    try:
        return [entry.pid for entry in Network.load(str(home)).nodes if entry.pid]
    except (DevnetError, OSError, ValueError, KeyError):  # not there yet, or half-written
        return []


def test_sigterm_while_the_network_starts_stops_every_node(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    command = [sys.executable, "-m", "cli.main", "devnet", "up", "--home", str(home),
               "--validators", "4", "--base-port", str(processes.free_base_port()),
               "--timeout", "120"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as up:
        try:
            wait_until(lambda: len(_recorded_pids(home)) == 4, 60, "four node pids")
            pids = _recorded_pids(home)
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

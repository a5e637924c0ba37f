"""The short multi-host rehearsal (``make faults`` runs it; ``make multihost`` the long one).

Four validators, each in its own network namespace, 20 ms one-way delay and 1 %
loss on every link between them: they listen only at their configured addresses,
commit under a small load, survive a killed validator and agree on every block.
Skipped, with the reason, where network namespaces or TUN devices cannot be made
(not root, no iproute2, ``ip netns add`` refused, no ``/dev/net/tun``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import netns
from tests.multihost.rehearsal import Plan, run

DELAY_MS = 20.0


@pytest.fixture(autouse=True)
def _need_netns() -> None:
    reason = netns.shaping_available()
    if reason is not None:
        pytest.skip(f"the multi-host rehearsal cannot run here: {reason}")


def _round_trip_s(mesh: netns.NetnsMesh) -> float:
    """Seconds for a TCP connect from node 0's namespace to a listener in node 1's."""
    server = (
        "import socket,sys\n"
        "s=socket.socket();s.bind((sys.argv[1],7000));s.listen();print('up',flush=True)\n"
        "c,_=s.accept();c.close()\n"
    )
    client = (
        "import socket,sys,time\n"
        "t=time.monotonic();socket.create_connection((sys.argv[1],7000),5).close()\n"
        "print(time.monotonic()-t)\n"
    )
    address = mesh.address(1)
    with subprocess.Popen(
        mesh.command(1, [sys.executable, "-c", server, address]), stdout=subprocess.PIPE, text=True
    ) as listener:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "up"
        out = subprocess.run(
            mesh.command(0, [sys.executable, "-c", client, address]),
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        listener.wait(timeout=10)
    return float(out)


def test_shaped_links_delay_between_nodes_and_leave_nothing_behind() -> None:
    mesh = netns.NetnsMesh(2, seed=7, links="shaped")
    try:
        mesh.shape(DELAY_MS)
        took = _round_trip_s(mesh)
        assert took >= 2 * DELAY_MS / 1000, f"a connect took {took * 1000:.1f} ms"
        assert mesh.link_stats()["forwarded"] >= 3  # the handshake went through the shaper
    finally:
        mesh.close()
    assert netns.leftovers(mesh.tag) == []


@pytest.mark.full  # about 30 s: make faults runs it (make multihost the long rehearsal)
def test_four_validators_in_namespaces_commit_and_survive_a_kill(tmp_path: Path) -> None:
    # 4 validators, 2 ms jitter, 1 % loss (the defaults); make multihost runs the partition
    plan = Plan(delay_ms=DELAY_MS, rate_per_s=10.0, steady_s=8.0, partition_s=0.0, kill_s=5.0)
    result = run(plan, str(tmp_path))
    print(result)
    steady = result["phases"][0]
    assert steady["blocks"] > 0 and steady["sent"] > 0
    assert steady["committed"] == steady["sent"]
    assert steady["finality_p50_ms"] >= 3 * DELAY_MS  # proposal, prevote, precommit
    assert result["faults"]["kill"]["caught_up_s"] >= 0
    assert result["safety"]["nodes_agree"] == 4
    assert result["committed"] == result["submitted"]
    assert result["links"]["dropped"] > 0  # the 1 % loss was applied
    assert result["reach"]["nodes"] == 4

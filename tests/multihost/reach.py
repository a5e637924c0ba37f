"""Each validator is reachable only at the address its config names, and knows its
peers only by theirs.

For every node of a :class:`~tests.e2e.cluster.Cluster` on the ``netns`` transport:

* its config listens (p2p and API) on its own namespace address and its peer list is
  exactly the other validators' p2p addresses;
* the sockets listening in its namespace (``ss -ltn``) are bound to that address,
  none to a wildcard;
* from the suite's address its p2p and API ports answer at its address and refuse
  at another node's address; inside its own namespace they refuse on 127.0.0.1.
"""

from __future__ import annotations

import socket
import subprocess
import sys

from node.config import Home
from tests.e2e.cluster import Cluster

CONNECT_TIMEOUT_S = 3.0
# Run inside a namespace: exit 0 when host:port accepts a connection, 1 when it does not.
_PROBE = (
    "import socket,sys\n"
    "try:\n"
    f"    socket.create_connection((sys.argv[1], int(sys.argv[2])), {CONNECT_TIMEOUT_S}).close()\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)


def connects(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection from the suite's address."""
    try:
        socket.create_connection((host, port), CONNECT_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def check_addresses(cluster: Cluster) -> dict[str, object]:
    """Raise AssertionError unless every node is bound and reachable as described above;
    returns what was checked."""
    assert cluster.netns is not None, "the address checks need the netns transport"
    problems: list[str] = []
    for i in range(cluster.count):
        problems += _config_problems(cluster, i)
        problems += _listening_problems(cluster, i)
        problems += _reach_problems(cluster, i)
    assert not problems, "reachable beyond the configured addresses: " + "; ".join(problems)
    return {"nodes": len(cluster.nodes), "addresses": [e.p2p for e in cluster.nodes]}


def _config_problems(cluster: Cluster, i: int) -> list[str]:
    entry = cluster.nodes[i]
    assert cluster.netns is not None
    own = cluster.netns.address(i)
    config = Home(entry.home).load_config()
    others = sorted(e.p2p for e in cluster.nodes if e is not entry)
    problems = []
    for what, listen in (("p2p", config.p2p.listen), ("api", config.api.listen)):
        if listen.rsplit(":", 1)[0] != own:
            problems.append(f"{entry.name} {what} listens on {listen}, not on {own}")
    if sorted(config.p2p.peers) != others:
        problems.append(f"{entry.name} peers {config.p2p.peers} are not {others}")
    return problems


def _listening_problems(cluster: Cluster, i: int) -> list[str]:
    entry = cluster.nodes[i]
    assert cluster.netns is not None
    out = subprocess.run(
        cluster.netns.command(i, ["ss", "-ltnH"]), capture_output=True, text=True, check=True
    ).stdout
    bound = [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]
    wanted = {entry.p2p, entry.api}
    problems = [f"{entry.name} listens on {b}" for b in bound if b not in wanted]
    problems += [f"{entry.name} does not listen on {w}" for w in sorted(wanted - set(bound))]
    return problems


def _reach_problems(cluster: Cluster, i: int) -> list[str]:
    entry = cluster.nodes[i]
    assert cluster.netns is not None
    elsewhere = cluster.netns.address((i + 1) % cluster.count)
    problems = []
    for listen in (entry.p2p, entry.api):
        host, port = listen.rsplit(":", 1)
        if not connects(host, int(port)):
            problems.append(f"{entry.name} does not answer at {listen}")
        if connects(elsewhere, int(port)):
            problems.append(f"{entry.name}'s port {port} answers at {elsewhere}")
        probe = cluster.netns.command(i, [sys.executable, "-c", _PROBE, "127.0.0.1", port])
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            problems.append(f"{entry.name}'s port {port} answers on its own 127.0.0.1")
    return problems

"""Real network partitions with Linux network namespaces (root only).

Layout, for a suite process with pid P::

    namespace clE2E-P-sw   one bridge "br0" (the switch)
    namespace clE2E-P-<i>  node i, address 10.<net>.0.<i+1>/24 on its veth end
    root namespace         one veth on the bridge, 10.<net>.0.200/24: the tests, the load
                           and the witness reach every node's API and p2p from here

Each node process runs inside its namespace (``ip netns exec``, which keeps the pid).
A partition puts ``blackhole`` routes into the namespaces of the nodes it
separates: packets to the other side vanish, TCP retransmits into the void and
the nodes notice only by their own timeouts — a real partition, not a reset. The
root-side address is never cut, so the suite can watch both sides.

With ``links="shaped"`` the switch is :mod:`tests.e2e.shaper` instead of the bridge:
a process that holds one TUN device per node (moved into the node's namespace) and
one in the root namespace, and forwards packets between them with the one-way
delay, jitter and loss :meth:`NetnsMesh.shape` sets per pair of nodes — what
``tc netem`` would do, on kernels that have no ``sch_netem``. Partitions work the
same (blackhole routes inside the node namespaces).

Nothing outside the namespaces is changed but one interface in the root namespace
(no sysctl, no firewall); :meth:`NetnsMesh.close` removes everything, and a later
run removes leftovers of runs whose process is gone (a shaper ends by itself when
the suite that started it is gone, and its devices with it).
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import sys
from pathlib import Path

PREFIX = "clE2E-"
REPO = Path(__file__).resolve().parents[2]
SHAPER_TIMEOUT_S = 10.0


def available() -> str | None:
    """None when namespaces can be used here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.strip() if exc.stderr else exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def shaping_available() -> str | None:
    """None when shaped links (:mod:`tests.e2e.shaper`) can be made here, else why not."""
    reason = available()
    if reason is not None:
        return reason
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
    except OSError as exc:
        return f"shaped links need TUN devices: /dev/net/tun: {exc.strerror}"
    return None


def _ip(*args: str, ns: str | None = None) -> str:
    cmd = ["ip", *args] if ns is None else ["ip", "netns", "exec", ns, "ip", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def remove_stale() -> None:
    """Delete namespaces and links left by suite processes that no longer exist."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    for line in links.stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        ifname = parts[1].strip().split("@")[0]
        if ifname.startswith("ce") and ifname.endswith("r"):
            pid = ifname[2:-1]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                subprocess.run(["ip", "link", "del", ifname], capture_output=True, check=False)


def leftovers(tag: str) -> list[str]:
    """Namespaces and root-namespace links of the mesh ``tag`` that still exist."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    found = [
        line.split()[0]
        for line in out.stdout.splitlines()
        if line.split() and line.split()[0].startswith(f"{PREFIX}{tag}-")
    ]
    short = f"ce{int(tag) % 10_000_000}"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    for line in links.stdout.splitlines():
        parts = line.split(":")
        ifname = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
        if ifname.startswith(short) and not ifname[len(short) :][:1].isdigit():
            found.append(ifname)
    return found


def _free_net(rng: random.Random) -> int:
    """A second octet N, drawn from ``rng``, whose 10.N.0.0/24 no root-namespace
    interface uses yet (another mesh running at the same time)."""
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=False)
    for _ in range(64):
        net = rng.randrange(16, 250)
        if f" 10.{net}.0." not in used.stdout:
            return net
    raise RuntimeError("no free 10.N.0.0/24 network for the namespaces")


class NetnsMesh:
    """One namespace per node behind one switch; partitions by blackhole routes.

    ``links``: ``"bridge"`` (a kernel bridge, links without delay) or ``"shaped"``
    (the :mod:`tests.e2e.shaper` switch, whose links :meth:`shape` sets)."""

    def __init__(self, count: int, seed: int, *, links: str = "bridge") -> None:
        if links not in ("bridge", "shaped"):
            raise ValueError(f"unknown links {links!r}")
        remove_stale()
        self.count = count
        self.links = links
        self.seed = seed
        self.tag = str(os.getpid())
        self.net = _free_net(random.Random(seed))
        self.switch = f"{PREFIX}{self.tag}-sw"
        self.names = [f"{PREFIX}{self.tag}-{i}" for i in range(count)]
        short = int(self.tag) % 10_000_000
        self.root_if = f"ce{short}r" if links == "bridge" else f"ce{short}tr"
        self.shaper: subprocess.Popen[str] | None = None
        self._blackholes: list[tuple[int, str]] = []
        self._created: list[str] = []
        try:
            if links == "bridge":
                self._setup()
            else:
                self._setup_shaped()
        except BaseException:
            self.close()
            raise

    def address(self, i: int) -> str:
        return f"10.{self.net}.0.{i + 1}"

    @property
    def root_address(self) -> str:
        return f"10.{self.net}.0.200"

    def _setup(self) -> None:
        _ip("netns", "add", self.switch)
        self._created.append(self.switch)
        _ip("link", "add", "br0", "type", "bridge", ns=self.switch)
        _ip("link", "set", "br0", "up", ns=self.switch)
        tag = int(self.tag) % 10_000_000
        for i, ns in enumerate(self.names):
            _ip("netns", "add", ns)
            self._created.append(ns)
            inner, outer = f"ce{tag}n{i}", f"ce{tag}s{i}"
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "netns", self.switch)
            _ip("link", "set", outer, "master", "br0", ns=self.switch)
            _ip("link", "set", outer, "up", ns=self.switch)
            _ip("link", "set", "lo", "up", ns=ns)
            _ip("addr", "add", f"{self.address(i)}/24", "dev", inner, ns=ns)
            _ip("link", "set", inner, "up", ns=ns)
        outer = f"ce{tag}sr"
        _ip("link", "add", self.root_if, "type", "veth", "peer", "name", outer)
        _ip("link", "set", outer, "netns", self.switch)
        _ip("link", "set", outer, "master", "br0", ns=self.switch)
        _ip("link", "set", outer, "up", ns=self.switch)
        _ip("addr", "add", f"{self.root_address}/24", "dev", self.root_if)
        _ip("link", "set", self.root_if, "up")

    def _setup_shaped(self) -> None:
        prefix = f"ce{int(self.tag) % 10_000_000}t"
        self.shaper = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.e2e.shaper", "--prefix", prefix),
                *("--net", f"10.{self.net}.0", "--count", str(self.count)),
                *("--seed", str(self.seed)),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._answer() != "ready":
            raise RuntimeError("the link shaper did not start")
        for i, ns in enumerate(self.names):
            _ip("netns", "add", ns)
            self._created.append(ns)
            _ip("link", "set", f"{prefix}{i}", "netns", ns)
            _ip("link", "set", "lo", "up", ns=ns)
            _ip("addr", "add", f"{self.address(i)}/24", "dev", f"{prefix}{i}", ns=ns)
            _ip("link", "set", f"{prefix}{i}", "up", ns=ns)
        _ip("addr", "add", f"{self.root_address}/24", "dev", self.root_if)
        _ip("link", "set", self.root_if, "up")

    def _answer(self) -> str:
        """The shaper's next line of output (empty if it gave none in time)."""
        assert self.shaper is not None and self.shaper.stdout is not None
        ready, _, _ = select.select([self.shaper.stdout], [], [], SHAPER_TIMEOUT_S)
        return self.shaper.stdout.readline().strip() if ready else ""

    def _ask(self, command: dict[str, object]) -> dict[str, object]:
        if self.shaper is None or self.shaper.stdin is None:
            raise ValueError("links are shaped only in a mesh built with links='shaped'")
        self.shaper.stdin.write(json.dumps(command) + "\n")
        self.shaper.stdin.flush()
        answer = json.loads(self._answer() or "{}")
        if not isinstance(answer, dict) or "error" in answer or not answer:
            raise RuntimeError(f"the link shaper refused {command}: {answer}")
        return answer

    def shape(self, delay_ms: float, jitter_ms: float = 0.0, loss_pct: float = 0.0) -> None:
        """The same one-way delay (± uniform jitter) and loss on every link between nodes."""
        self.shape_pairs(
            [[delay_ms] * self.count for _ in range(self.count)],
            [[jitter_ms] * self.count for _ in range(self.count)],
            [[loss_pct] * self.count for _ in range(self.count)],
        )

    def shape_pairs(
        self,
        delay_ms: list[list[float]],
        jitter_ms: list[list[float]],
        loss_pct: list[list[float]],
    ) -> None:
        """Per ordered pair (row: sender, column: receiver) of nodes."""
        self._ask({"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct})

    def link_stats(self) -> dict[str, object]:
        """Packets the shaper forwarded and dropped between nodes so far."""
        return self._ask({"stats": True})

    def command(self, i: int, argv: list[str]) -> list[str]:
        """``argv`` run inside node ``i``'s namespace (same pid: ip execs it)."""
        return ["ip", "netns", "exec", self.names[i], *argv]

    def partition(self, groups: list[set[int]]) -> None:
        """Blackhole every route between nodes of different groups."""
        where = {i: g for g, group in enumerate(groups) for i in group}
        for i in range(self.count):
            for j in range(self.count):
                if i != j and i in where and j in where and where[i] != where[j]:
                    target = f"{self.address(j)}/32"
                    _ip("route", "add", "blackhole", target, ns=self.names[i])
                    self._blackholes.append((i, target))

    def heal(self) -> None:
        for i, target in self._blackholes:
            subprocess.run(
                ["ip", "netns", "exec", self.names[i], "ip", "route", "del", "blackhole", target],
                capture_output=True,
                check=False,
            )
        self._blackholes.clear()

    def close(self) -> None:
        if self.shaper is not None:
            self._stop_shaper(self.shaper)
            self.shaper = None
        subprocess.run(["ip", "link", "del", self.root_if], capture_output=True, check=False)
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._created.clear()

    @staticmethod
    def _stop_shaper(shaper: subprocess.Popen[str]) -> None:
        """Close its stdin (it exits and the kernel removes its devices); kill it by pid
        if it has not within a few seconds."""
        if shaper.stdin is not None:
            shaper.stdin.close()
        try:
            shaper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            shaper.kill()
            shaper.wait(timeout=5)
        if shaper.stdout is not None:
            shaper.stdout.close()

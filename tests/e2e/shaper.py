"""A user-space switch that gives every link between two nodes a delay, jitter and loss.

What ``tc netem`` does on a bridge, for kernels that have no ``sch_netem`` (the VMs
these suites run on boot with ``nomodule`` and without it). Run as its own process
(``python -m tests.e2e.shaper``, root) by :class:`tests.e2e.netns.NetnsMesh`:

* it opens one TUN device per node, ``<prefix><i>``, and one for the suite,
  ``<prefix>r``, prints ``ready`` and leaves it to the mesh to move each node's device
  into that node's namespace and give it its address (the open file stays attached
  to a device that moves);
* every IP packet read from one device is written to the device of its destination
  address, ``<net>.<i + 1>`` for node i and ``<net>.200`` for the suite; between two
  nodes it is first dropped with the link's loss probability or held for the
  link's one-way delay plus a uniform jitter (never reordered within a link, as on
  one path); packets to or from the suite pass at once (the client, the load and the
  witness sit next to every node);
* commands arrive as JSON lines on stdin, one at a time (the next only after the
  answer), and each is answered with one JSON line:
  ``{"delay_ms": M, "jitter_ms": M, "loss_pct": M}`` (M: count x count matrices,
  row = sender) sets the links, ``{"stats": true}`` returns the packets forwarded
  and dropped between nodes;
* it exits when stdin closes (the suite ended, however it ended) and the kernel
  removes its TUN devices with it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import json
import os
import random
import select
import struct
import sys
import time
from typing import Any

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
ROOT_HOST = 200
MAX_PACKET = 65535


def open_tun(name: str) -> int:
    """A non-blocking file descriptor attached to a new TUN device ``name``."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Links:
    """Per ordered pair of nodes: one-way delay, jitter and loss, and what passed."""

    def __init__(self, count: int, seed: int) -> None:
        self.count = count
        self.delay_ms = [[0.0] * count for _ in range(count)]
        self.jitter_ms = [[0.0] * count for _ in range(count)]
        self.loss_pct = [[0.0] * count for _ in range(count)]
        self.rng = random.Random(seed)
        self.forwarded = 0
        self.dropped = 0
        self._last_due: dict[tuple[int, int], float] = {}

    def set(self, command: dict[str, Any]) -> None:
        for key in ("delay_ms", "jitter_ms", "loss_pct"):
            matrix = [[float(v) for v in row] for row in command[key]]
            if len(matrix) != self.count or any(len(row) != self.count for row in matrix):
                raise ValueError(f"{key} must be a {self.count} x {self.count} matrix")
            setattr(self, key, matrix)

    def due(self, src: int | None, dst: int | None, now: float) -> float | None:
        """When a packet from ``src`` to ``dst`` (None: the suite) is delivered, or None
        when the link drops it."""
        if src is None or dst is None or src == dst:
            return now
        if self.rng.random() * 100 < self.loss_pct[src][dst]:
            self.dropped += 1
            return None
        self.forwarded += 1
        jitter = self.rng.uniform(-1.0, 1.0) * self.jitter_ms[src][dst]
        due = now + max(0.0, self.delay_ms[src][dst] + jitter) / 1000
        due = max(due, self._last_due.get((src, dst), 0.0))  # one path: first in, first out
        self._last_due[(src, dst)] = due
        return due


class Switch:
    """Reads packets from every TUN device and delivers them through :class:`Links`."""

    def __init__(self, prefix: str, net: str, count: int, seed: int) -> None:
        self.net = net
        self.fds = [open_tun(f"{prefix}{i}") for i in range(count)]
        self.root_fd = open_tun(f"{prefix}r")
        self.links = Links(count, seed)
        self.by_address = {self._address(i): fd for i, fd in enumerate(self.fds)}
        self.by_address[self._address(None)] = self.root_fd
        self.node_of = {self._address(i): i for i in range(count)}
        self.queue: list[tuple[float, int, int, bytes]] = []
        self._serial = 0

    def _address(self, i: int | None) -> bytes:
        host = ROOT_HOST if i is None else i + 1
        return bytes([*(int(part) for part in self.net.split(".")), host])

    def run(self) -> None:
        print("ready", flush=True)
        readers = [*self.fds, self.root_fd, sys.stdin.fileno()]
        while True:
            timeout = max(0.0, self.queue[0][0] - time.monotonic()) if self.queue else 1.0
            readable, _, _ = select.select(readers, [], [], timeout)
            for fd in readable:
                if fd == sys.stdin.fileno():
                    if not self._command(sys.stdin.readline()):
                        return
                else:
                    self._read(fd)
            self._deliver(time.monotonic())

    def _command(self, line: str) -> bool:
        if not line:
            return False
        try:
            command = json.loads(line)
            if command.get("stats"):
                answer = {"forwarded": self.links.forwarded, "dropped": self.links.dropped}
            else:
                self.links.set(command)
                answer = {"ok": True}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"error": str(exc)}
        print(json.dumps(answer), flush=True)
        return True

    def _read(self, fd: int) -> None:
        for _ in range(64):  # bounded, so one busy device cannot starve the others
            try:
                packet = os.read(fd, MAX_PACKET)
            except BlockingIOError:
                return
            if len(packet) < 20 or packet[0] >> 4 != 4:
                continue  # IPv4 only: the mesh gives no device an IPv6 address
            target = self.by_address.get(packet[16:20])
            if target is None:
                continue
            src, dst = self.node_of.get(packet[12:16]), self.node_of.get(packet[16:20])
            due = self.links.due(src, dst, time.monotonic())
            if due is None:
                continue
            self._serial += 1
            heapq.heappush(self.queue, (due, self._serial, target, packet))

    def _deliver(self, now: float) -> None:
        while self.queue and self.queue[0][0] <= now:
            _, _, target, packet = heapq.heappop(self.queue)
            with contextlib.suppress(OSError):  # a device going away: a lost packet
                os.write(target, packet)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", required=True, help="TUN device names: <prefix><i>")
    parser.add_argument("--net", required=True, help="the first three octets, e.g. 10.42.0")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    Switch(args.prefix, args.net, args.count, args.seed).run()


if __name__ == "__main__":
    main()

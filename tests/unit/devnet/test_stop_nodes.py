"""``devnet.processes.stop_nodes``: every node stopped, all at once, and a signal that
comes while they stop (a second Ctrl-C, a supervisor's second SIGTERM) does not cut the
loop short: it is raised again once they are all stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from devnet import processes
from devnet.layout import NodeEntry

# A stand-in for a node: takes a while to stop after SIGTERM, as a node flushing its
# store does; says when it is ready so the test never signals a half-started one.
SLOW_TO_STOP = """
import signal, sys, time
def stop(*_):
    time.sleep(float(sys.argv[1]))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def _start(stop_s: float) -> tuple[NodeEntry, subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_TO_STOP, str(stop_s)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return NodeEntry("n", "/nonexistent", "127.0.0.1:1", "127.0.0.1:2", pid=proc.pid), proc


def _cleanup(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_all_stop_at_once_not_one_after_the_other() -> None:
    started = [_start(1.0) for _ in range(3)]
    try:
        t0 = time.monotonic()
        processes.stop_nodes([entry for entry, _ in started])
        took = time.monotonic() - t0
        assert all(proc.poll() is not None for _, proc in started)
        assert all(entry.pid is None for entry, _ in started)
        assert took < 2.5, f"{took:.1f} s: stopped one after the other (3 × 1 s)"
    finally:
        _cleanup([proc for _, proc in started])


def test_one_that_does_not_stop_is_killed_at_the_deadline() -> None:
    entry, proc = _start(60.0)
    try:
        t0 = time.monotonic()
        processes.stop_nodes([entry], timeout_s=0.5)
        assert time.monotonic() - t0 < 5, "waited for its 60 s shutdown"
        assert not processes.is_running(proc.pid) and entry.pid is None
    finally:
        _cleanup([proc])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_stopping_is_raised_after_every_node_stopped(signum: int) -> None:
    started = [_start(0.5) for _ in range(2)]
    seen: list[tuple[int, list[int | None]]] = []

    def handler(num: int, _frame: object) -> None:  # records who was still running
        seen.append((num, [p.poll() for _, p in started]))

    before = signal.signal(signum, handler)
    try:
        # The signal comes from another process while the nodes are stopping.
        later = f"import os, time; time.sleep(0.2); os.kill({os.getpid()}, {signum})"
        sender = subprocess.Popen([sys.executable, "-c", later])
        processes.stop_nodes([entry for entry, _ in started])
        sender.wait()
        assert seen, "the signal was lost"
        num, polls = seen[0]
        assert num == signum
        assert None not in polls, "the handler ran before every node had stopped"
        assert signal.getsignal(signum) is handler  # the handler of before, given back
    finally:
        signal.signal(signum, before)
        _cleanup([proc for _, proc in started])

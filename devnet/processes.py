"""Start, watch and stop a devnet's node processes — always by their own pid."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from devnet.layout import Network, NodeEntry

STOP_TIMEOUT_S = 15.0  # a node that has not stopped by then is killed


def start_node(
    entry: NodeEntry, *, extra_env: dict[str, str] | None = None, state_sync: bool = False
) -> int:
    """Start one node in the background; its output goes to ``<home>/node.log``.
    ``state_sync``: ``node start --state-sync`` (an empty node joins from a snapshot)."""
    log = open(os.path.join(entry.home, "node.log"), "ab")  # noqa: SIM115 - handed to the child
    env = os.environ | (extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "node", "start", "--home", entry.home]
        + (["--state-sync"] if state_sync else []),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # Ctrl-C in the terminal reaches `devnet up`, which stops us
    )
    log.close()
    entry.pid = proc.pid
    return proc.pid


def is_running(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_node(entry: NodeEntry, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, wait for a clean shutdown, SIGKILL if it does not come."""
    stop_nodes([entry], timeout_s=timeout_s)


def stop_nodes(entries: Sequence[NodeEntry], *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to every running one at once, wait for them all, SIGKILL those still
    running at the deadline. A SIGTERM or Ctrl-C that comes meanwhile (a supervisor's
    second signal, an impatient user) is held until they are stopped: it would
    otherwise cut the loop short and leave the rest running."""
    with signals_held():
        stopping = []
        for entry in entries:
            if is_running(entry.pid):
                assert entry.pid is not None
                _signal(entry.pid, signal.SIGTERM)
                stopping.append(entry)
        deadline = time.monotonic() + timeout_s
        while stopping and time.monotonic() < deadline:
            time.sleep(0.1)
            stopping = [e for e in stopping if is_running(e.pid)]
        for entry in stopping:
            assert entry.pid is not None
            _signal(entry.pid, signal.SIGKILL)
        for entry in stopping:
            while is_running(entry.pid):
                time.sleep(0.05)
        for entry in entries:
            entry.pid = None


def stop_all(network: Network) -> None:
    stop_nodes(network.nodes)
    network.save()


def _signal(pid: int, signum: int) -> None:
    """``os.kill``, for a process that may have exited since it was last looked at."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT that come during the block are noted, and raised again once it
    is over, under the handlers of before (signals are the main thread's: elsewhere
    nothing is changed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def note(signum: int, _frame: object) -> None:
        came.append(signum)

    before = {s: signal.getsignal(s) for s in HELD_SIGNALS}
    for s in HELD_SIGNALS:
        signal.signal(s, note)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if came:
            signal.raise_signal(came[0])


def get_json(url: str, timeout_s: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def node_status(entry: NodeEntry) -> dict[str, Any] | None:
    return status_at(entry.url)


def status_at(url: str) -> dict[str, Any] | None:
    """``GET url/v1/status`` of a CityLedger node, or None if nothing like one answers."""
    try:
        status = get_json(url + "/v1/status")
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return status if isinstance(status, dict) and "chain_id" in status else None


def wait_for_height(network: Network, height: int, timeout_s: float) -> bool:
    """Wait until every running node has committed ``height``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        heights = [(node_status(n) or {}).get("height", -1) for n in network.nodes]
        if all(isinstance(h, int) and h >= height for h in heights):
            return True
        time.sleep(0.25)
    return False


def last_log_line(entry: NodeEntry) -> str:
    """The last line a node wrote to its log that says something (an error, usually)."""
    try:
        with open(os.path.join(entry.home, "node.log"), encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f.readlines()[-50:] if line.strip()]
    except FileNotFoundError:
        return "it wrote no log"
    errors = [line for line in lines if line.startswith("error:") or " ERROR " in line]
    return (errors or lines or ["its log is empty"])[-1]


def log_tails(nodes: Iterable[NodeEntry], lines: int) -> str:
    """The last ``lines`` of each node's log, headed by its name (for test failures)."""
    out = []
    for entry in nodes:
        try:
            with open(f"{entry.home}/node.log", encoding="utf-8", errors="replace") as f:
                out.append(f"--- {entry.name}\n" + "".join(f.readlines()[-lines:]))
        except OSError:
            pass
    return "\n".join(out)


def free_base_port(span: int = 20, rng: random.Random | None = None) -> int:
    """A base port whose p2p (+0..span-1) and API (+100..100+span-1) ports are free.

    Chosen *below* the kernel's ephemeral range, so that a node restarted on the same
    ports gets them back: an outgoing connection cannot have taken one meanwhile.
    """
    rng = rng or random.Random()
    low = _ephemeral_low()
    for _ in range(200):
        base = rng.randrange(max(1024, low - 12000), low - 100 - span)
        ports = [base + i for i in range(span)] + [base + 100 + i for i in range(span)]
        if all(_port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range on loopback below the ephemeral ports")


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

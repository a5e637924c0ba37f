"""Sampling every node with py-spy during the timed phase, and its top entries.

py-spy is not a dependency of the project: ``.venv/bin/pip install py-spy``.
Each node gets ``py-spy record --pid <pid> --format raw --nolineno --nonblocking``
(collapsed stacks, idle threads excluded, so shares are of busy samples); it is
stopped with SIGINT (py-spy then writes its file) and, failing that, SIGKILL —
always by its own pid.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")
TRUNK = 0.95  # frames on more of the busy samples than this are the call trunk (main, run)
# A rough attribution of busy samples to what the node was doing: the first rule all of
# whose needles occur in a stack's frames names the stack.
ACTIVITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("peer: decode proposal/sync blocks", ("decode_message", "Block.from_obj")),
    ("peer: decode gossiped tx batches", ("decode_message",)),
    ("peer: re-send own proposal/votes", ("resend_own",)),
    ("peer: encode frames (relay, broadcast)", ("encode_message",)),
    ("mempool: recheck after commit", ("Mempool.recheck",)),
    ("execute: meter-reading signatures", ("Executor._execute", "crypto_sign_open")),
    ("execute: contracts", ("execute_block",)),
    ("execute: state tree, log, roots, records", ("Executor._execute",)),
    ("signatures: transactions and votes", ("crypto_sign_open",)),
    ("mempool: admission checks", ("Mempool.add",)),
    ("commit: synced write batch", ("ChainStore.commit",)),
    ("consensus: signer's synced writes", ("Signer._persist",)),
    ("sync: serve or apply blocks", ("Syncer.",)),
    ("API: decode submissions", ("submit (node/api/routes_txs.py)",)),
    ("sockets: HTTP and WebSocket writes", ("_writelines",)),
    ("sockets: HTTP and WebSocket writes", ("send_frame",)),
    ("consensus core and driver", ("ConsensusDriver",)),
    ("consensus core and driver", ("ConsensusCore",)),
    ("peer links: other", ("PeerManager.",)),
    ("API: other requests", ("RequestHandler._handle_request", "Application._handle")),
    ("event loop (uvloop) and other", ()),
)


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return local if os.access(local, os.X_OK) else shutil.which("py-spy")


@dataclass
class Profiler:
    out_dir: str
    pids: dict[str, int]  # node name -> pid
    rate: int = 67
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
        os.makedirs(self.out_dir, exist_ok=True)
        for name, pid in self.pids.items():
            args = [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--nolineno",
                "--nonblocking",
                "-o",
                self.file(name),
            ]
            self.procs[name] = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )

    def file(self, name: str) -> str:
        return os.path.join(self.out_dir, f"{name}.txt")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True, slots=True)
class Entry:
    function: str
    self_share: float  # of busy samples, leaf frame
    total_share: float  # of busy samples, anywhere on the stack


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m['func']} ({path})"


def read_stacks(path: str) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if stack and count.isdigit():
                    frames = tuple(_short(fr) for fr in stack.split(";") if fr)
                    stacks[frames] += int(count)
    except OSError:
        pass
    return stacks


def top(path: str, n: int = 15, *, by: str = "self") -> tuple[int, list[Entry]]:
    """(busy samples, the ``n`` functions with the largest self or total share)."""
    stacks = read_stacks(path)
    total = sum(stacks.values())
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    for frames, count in stacks.items():
        if not frames:
            continue
        self_c[frames[-1]] += count
        for fn in set(frames):
            total_c[fn] += count
    if by != "self":
        total_c = Counter({fn: c for fn, c in total_c.items() if c < TRUNK * total})
    ranked = self_c if by == "self" else total_c
    entries = [
        Entry(fn, self_c[fn] / max(1, total), total_c[fn] / max(1, total))
        for fn, _ in ranked.most_common(n)
    ]
    return total, entries


def activities(path: str) -> tuple[int, list[tuple[str, float]]]:
    """(busy samples, share of them per activity of :data:`ACTIVITIES`, largest first)."""
    stacks = read_stacks(path)
    total = sum(stacks.values())
    counts: Counter[str] = Counter()
    for frames, count in stacks.items():
        for name, needles in ACTIVITIES:
            if all(any(needle in fr for fr in frames) for needle in needles):
                counts[name] += count
                break
    return total, [(name, c / max(1, total)) for name, c in counts.most_common()]


def summary(path: str) -> dict[str, Any]:
    """What the JSON keeps of one node's profile."""
    samples, by_self = top(path, 20, by="self")
    _, by_total = top(path, 25, by="total")
    _, acts = activities(path)
    return {
        "file": path,
        "busy_samples": samples,
        "activities": [(name, round(100 * share, 1)) for name, share in acts],
        "top_self": [(e.function, round(100 * e.self_share, 1)) for e in by_self],
        "top_total": [(e.function, round(100 * e.total_share, 1)) for e in by_total],
    }

"""Anonymous resident memory of the node processes, sampled through a benchmark run.

``RssAnon`` (``/proc/PID/status``) is the memory a process allocated itself — Python
objects, caches, LevelDB's block cache and memtables — without the mapped files (code,
shared libraries) that ``VmRSS`` also counts and that do not grow with the chain. A
node's figure adds its worker processes' (a node that hands work to a child must not
look smaller). Sampled once a second, because a peak (``VmHWM``) alone cannot say whether
memory levels off or keeps growing: ``anon_rss_growth`` compares the mean of the last
third of the samples with the mean of the first third (0.05 = 5 % more).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.cluster import _descendants

SERIES_POINTS = 24


def rss_anon_kb(pid: int) -> int | None:
    """``RssAnon`` of one process in kB (None when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def node_anon_mb(pid: int) -> float | None:
    """A node's anonymous memory with its worker processes', in MiB."""
    own = rss_anon_kb(pid)
    if own is None:
        return None
    children = (rss_anon_kb(child) for child in _descendants(pid))
    return (own + sum(kb for kb in children if kb is not None)) / 1024


def anon_figures(samples: Sequence[float]) -> dict[str, Any]:
    """``peak_anon_rss_mb`` and ``anon_rss_growth`` of one node's samples (None with
    fewer than three: no thirds to compare)."""
    if not samples:
        return {
            "peak_anon_rss_mb": None,
            "anon_rss_growth": None,
            "anon_rss_samples": 0,
            "anon_rss_mb_series": [],
        }
    third = len(samples) // 3
    growth = None
    if third:
        first = sum(samples[:third]) / third
        last = sum(samples[-third:]) / third
        growth = round(last / first - 1, 4)
    return {
        "peak_anon_rss_mb": round(max(samples), 1),
        "anon_rss_growth": growth,
        "anon_rss_samples": len(samples),
        "anon_rss_mb_series": series(samples),
    }


def series(samples: Sequence[float], points: int = SERIES_POINTS) -> list[float]:
    """At most ``points`` of the samples, evenly spaced, first and last included: the
    shape of the curve (levelling off or climbing) for the record."""
    if len(samples) <= points:
        return [round(s, 1) for s in samples]
    step = (len(samples) - 1) / (points - 1)
    return [round(samples[round(i * step)], 1) for i in range(points)]


class AnonSampler:
    """Samples every node's anonymous memory each ``interval_s`` while running."""

    def __init__(self, pids: Mapping[str, int], interval_s: float = 1.0) -> None:
        self.pids = dict(pids)
        self.interval_s = interval_s
        self.samples: dict[str, list[float]] = {name: [] for name in pids}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            mb = node_anon_mb(pid)
            if mb is not None:
                self.samples[name].append(mb)

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()

    def figures(self) -> dict[str, dict[str, Any]]:
        return {name: anon_figures(s) for name, s in self.samples.items()}


def add_anon_figures(doc: dict[str, Any], per_node: Mapping[str, dict[str, Any]]) -> None:
    """Each node's figures into ``doc["nodes"]`` (matched by name), and the worst of them
    at the top level (the keys the acceptance checks read)."""
    for node in doc.get("nodes", []):
        node.update(per_node.get(node["name"], anon_figures(())))
    peaks = [f["peak_anon_rss_mb"] for f in per_node.values() if f["peak_anon_rss_mb"] is not None]
    growths = [f["anon_rss_growth"] for f in per_node.values() if f["anon_rss_growth"] is not None]
    doc["peak_anon_rss_mb"] = max(peaks) if peaks else None
    doc["anon_rss_growth"] = max(growths) if growths else None

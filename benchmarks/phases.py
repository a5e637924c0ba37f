"""Where the heights of a timed phase spent their time: each node's
``cityledger_height_phase_seconds`` (node/height_phases.py), read from ``/metrics``
before and after, as the mean of each phase over every node's measured heights."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

METRIC = "cityledger_height_phase_seconds"
Totals = dict[str, tuple[float, float]]  # phase -> (seconds, heights), summed over the nodes


async def phase_totals(http: aiohttp.ClientSession, urls: Sequence[str]) -> Totals:
    """Every node's phase sums and counts, added up (a node that does not answer: none)."""
    texts = await asyncio.gather(*(_metrics(http, url) for url in urls))
    totals: Totals = {}
    for text in texts:
        for phase, (seconds, count) in parse_phases(text).items():
            s, c = totals.get(phase, (0.0, 0.0))
            totals[phase] = (s + seconds, c + count)
    return totals


def parse_phases(text: str) -> Totals:
    """(sum, count) of each phase in one node's Prometheus text."""
    found: Totals = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            phase = sample.labels.get("phase")
            if phase is None or sample.name not in (METRIC + "_sum", METRIC + "_count"):
                continue
            seconds, count = found.get(phase, (0.0, 0.0))
            if sample.name.endswith("_sum"):
                seconds = sample.value
            else:
                count = sample.value
            found[phase] = (seconds, count)
    return found


def phase_figures(before: Mapping[str, tuple[float, float]], after: Totals) -> dict[str, float]:
    """Mean milliseconds of each phase over the heights measured between the two reads."""
    means: dict[str, float] = {}
    for phase, (seconds, count) in sorted(after.items()):
        s0, c0 = before.get(phase, (0.0, 0.0))
        if count > c0:
            means[phase] = round((seconds - s0) / (count - c0) * 1000, 1)
    return means


async def _metrics(http: aiohttp.ClientSession, url: str) -> str:
    try:
        async with http.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as resp:
            return await resp.text() if resp.status == 200 else ""
    except (aiohttp.ClientError, TimeoutError):
        return ""

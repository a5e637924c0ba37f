"""The anonymous-memory figures of ``bench run`` (benchmarks/anon_rss.py)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from rich.console import Console

from benchmarks.anon_rss import (
    AnonSampler,
    add_anon_figures,
    anon_figures,
    node_anon_mb,
    series,
)
from benchmarks.results import show_nodes


def test_growth_compares_the_last_third_with_the_first() -> None:
    flat = anon_figures([100.0, 100.0, 99.0, 101.0, 100.0, 100.0])
    assert flat["peak_anon_rss_mb"] == 101.0 and flat["anon_rss_growth"] == 0.0
    grows = anon_figures([100.0, 100.0, 110.0, 120.0, 130.0, 130.0])
    assert grows["anon_rss_growth"] == 0.3 and grows["anon_rss_samples"] == 6
    assert anon_figures([5.0, 6.0])["anon_rss_growth"] is None  # no thirds to compare


def test_the_series_keeps_the_first_and_last_and_at_most_its_points() -> None:
    assert series([1.0, 2.0, 3.0], points=5) == [1.0, 2.0, 3.0]
    long = series([float(i) for i in range(100)], points=5)
    assert long[0] == 0.0 and long[-1] == 99.0 and len(long) == 5 and long == sorted(long)


def test_this_process_is_sampled_and_a_gone_one_is_not() -> None:
    mine = node_anon_mb(os.getpid())
    assert mine is not None and 1 < mine < 100_000
    assert node_anon_mb(2**22 + 12345) is None  # above pid_max's default: no such process


def test_the_sampler_fills_each_node_and_the_worst_goes_on_top() -> None:
    async def sample() -> AnonSampler:
        sampler = AnonSampler({"a": os.getpid(), "gone": 2**22 + 12345}, interval_s=0.01)
        sampler.start()
        await asyncio.sleep(0.1)
        await sampler.stop()
        return sampler

    sampler = asyncio.run(sample())
    assert len(sampler.samples["a"]) >= 3 and sampler.samples["gone"] == []
    doc: dict[str, Any] = {"nodes": [{"name": "a"}, {"name": "gone"}]}
    add_anon_figures(doc, sampler.figures())
    assert doc["peak_anon_rss_mb"] == doc["nodes"][0]["peak_anon_rss_mb"] > 1
    assert doc["nodes"][1]["peak_anon_rss_mb"] is None


def test_the_per_node_table_shows_the_anonymous_memory_when_sampled() -> None:
    node = {"name": "a", "cpu_s": 1.0, "peak_rss_mb": 300.0, "data_bytes_delta": 0,
            "write_bytes_delta": 0}  # fmt: skip
    console = Console(record=True, width=160)
    show_nodes(console, [node])
    assert "anon" not in console.export_text()  # benches that do not sample it
    show_nodes(console, [{**node, "peak_anon_rss_mb": 212.5, "anon_rss_growth": 0.031}])
    text = console.export_text()
    assert "anon peak MB" in text and "212.5" in text and "+3.1 %" in text

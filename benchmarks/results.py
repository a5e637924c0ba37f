"""From what the driver, the watchers and ``/proc`` saw, to figures, a table and JSON."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.cluster import ProcSample
from benchmarks.driver import ACCEPTED, BlockWatch, DriveLog
from benchmarks.workload import EXPECTED_CODES, Item
from ledger import compiled


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class NodeUse:
    name: str
    cpu_s: float
    peak_rss_mb: float
    data_bytes_delta: int
    write_bytes_delta: int

    def to_obj(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cpu_s": round(self.cpu_s, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "data_bytes_delta": self.data_bytes_delta,
            "write_bytes_delta": self.write_bytes_delta,
        }


def node_use(
    names: Sequence[str],
    before: Sequence[ProcSample | None],
    after: Sequence[ProcSample | None],
    data_before: Sequence[int],
    data_after: Sequence[int],
) -> list[NodeUse]:
    out = []
    for i, name in enumerate(names):
        b, a = before[i], after[i]
        cpu = (a.cpu_s - b.cpu_s) if a and b else math.nan
        out.append(
            NodeUse(
                name,
                cpu,
                a.peak_rss_mb if a else math.nan,
                data_after[i] - data_before[i],
                (a.write_bytes - b.write_bytes) if a and b else 0,
            )
        )
    return out


@dataclass
class Outcome:
    """Per-item fate after the run: committed height and latency, or why not."""

    latencies_ms: list[float] = field(default_factory=list)  # from its first scheduled send
    # from the answer that accepted it: what the node's admission control promises
    accepted_latencies_ms: list[float] = field(default_factory=list)
    committed: int = 0
    accepted: int = 0
    lost: list[int] = field(default_factory=list)  # accepted valid items never committed
    stranded: int = 0  # lost, but behind a refused transaction of the same sender (nonce gap)
    refused_valid: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)  # flavour -> sent
    invalid_refused: Counter[str] = field(default_factory=Counter)  # flavour:code -> count
    invalid_wrong: int = 0  # accepted, or refused with an unexpected code
    invalid_committed: int = 0
    last_commit: float = 0.0


def outcome(
    items: Sequence[Item],
    log: DriveLog,
    where: dict[bytes, int],
    watches: Sequence[BlockWatch],
) -> Outcome:
    """Match items with the blocks they landed in (``where``: tx hash -> height)."""
    out = Outcome()
    refused_senders: set[bytes] = set()
    for i in range(log.sent):
        item, answer = items[i], log.codes[i]
        code = "no_answer" if answer is None else answer
        height = where.get(item.hash)
        if not item.valid:
            out.invalid[item.category] += 1
            out.invalid_refused[f"{item.category}:{code}"] += 1
            if code not in EXPECTED_CODES[item.category]:
                out.invalid_wrong += 1
            if height is not None:  # only blocks of the timed phase are in ``where``
                out.invalid_committed += 1
            continue
        if code != ACCEPTED:
            out.refused_valid[str(code)] += 1
            refused_senders.add(item.sender)
            continue
        out.accepted += 1
        if height is None:
            if item.sender in refused_senders:
                out.stranded += 1
            else:
                out.lost.append(i)
            continue
        out.committed += 1
        announced = watches[item.node].announced.get(height)
        if announced is None:  # that node's socket missed it: take the first announcement
            announced = min(w.announced.get(height, math.inf) for w in watches)
        if math.isfinite(announced):
            out.latencies_ms.append((announced - log.sched[i]) * 1000)
            out.accepted_latencies_ms.append((announced - log.accepted_at[i]) * 1000)
            out.last_commit = max(out.last_commit, announced)
    out.latencies_ms.sort()
    out.accepted_latencies_ms.sort()
    return out


def figures(
    o: Outcome,
    log: DriveLog,
    blocks: dict[int, tuple[list[bytes], int, int]],
    use: Sequence[NodeUse],
    ceiling: dict[str, Any],
) -> dict[str, Any]:
    """The run's headline numbers (the JSON document's top level)."""
    send_s = max(1e-9, log.ended - log.began)
    # Over the whole offered period at least: a network that stalls does not get a short window.
    commit_s = max(1e-9, max(o.last_commit, log.ended) - log.began)
    committed_tps = o.committed / commit_s
    ceiling_tps = float(ceiling["ceiling_tps"])
    return (
        _traffic_figures(o, log, send_s, committed_tps)
        | _latency_figures(o.latencies_ms)
        | _accepted_latency_figures(o.accepted_latencies_ms)
        | _block_figures(blocks)
        | _invalid_figures(o)
        | _resource_figures(o, use)
        | {
            "ceiling": ceiling,
            "ceiling_tps": round(ceiling_tps),
            "efficiency": round(committed_tps / ceiling_tps, 3) if ceiling_tps else math.nan,
            "code": compiled.describe(),  # the nodes run what this process runs (same tree)
        }
        | _driver_figures(log)
    )


def _traffic_figures(
    o: Outcome, log: DriveLog, send_s: float, committed_tps: float
) -> dict[str, Any]:
    """Rates offered, accepted and committed; what was lost, stranded or refused."""
    return {
        "offered_tps": round(log.sent / send_s, 1),
        "accepted_tps": round(o.accepted / send_s, 1),
        "committed_tps": round(committed_tps, 1),
        "sent": log.sent,
        "accepted": o.accepted,
        "committed": o.committed,
        "goodput": round(o.committed / max(1, log.sent), 3),  # committed / offered
        "lost": len(o.lost),
        "stranded": o.stranded,
        "refused_valid": dict(o.refused_valid),
        "refusals_429": log.refusals,  # "not now" answers, counted at each attempt
        "retried": log.retried,
    }


def _latency_figures(lat: Sequence[float]) -> dict[str, Any]:
    """Percentiles of the sorted submit-to-announced latencies."""
    return {
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(lat[-1], 1) if lat else math.nan,
    }


def _accepted_latency_figures(lat: Sequence[float]) -> dict[str, Any]:
    """Percentiles from the node's accepting answer to the block announced: unlike the
    latencies above, without the time a refused transaction waited to be sent again."""
    return {
        "accepted_p50_ms": round(percentile(lat, 50), 1),
        "accepted_p99_ms": round(percentile(lat, 99), 1),
    }


def _block_figures(blocks: dict[int, tuple[list[bytes], int, int]]) -> dict[str, Any]:
    """Blocks per second, transactions per block and rounds per height."""
    rounds = Counter(r + 1 for _, r, _ in blocks.values())
    times = sorted(t for _, _, t in blocks.values())
    block_span_s = max(1e-3, (times[-1] - times[0]) / 1000) if len(times) > 1 else math.nan
    return {
        "blocks": len(blocks),
        "blocks_per_s": round((len(blocks) - 1) / block_span_s, 2) if len(blocks) > 1 else 0,
        "txs_per_block": round(sum(len(h) for h, _, _ in blocks.values()) / max(1, len(blocks))),
        "rounds_per_height": round(sum(k * v for k, v in rounds.items()) / max(1, len(blocks)), 3),
        "rounds_histogram": {str(k): v for k, v in sorted(rounds.items())},
    }


def _invalid_figures(o: Outcome) -> dict[str, Any]:
    """What became of the invalid transactions sent."""
    return {
        "invalid_sent": sum(o.invalid.values()),
        "invalid_rejected": sum(o.invalid.values()) - o.invalid_wrong,
        "invalid_unexpected": o.invalid_wrong,
        "invalid_committed": o.invalid_committed,
        "invalid_codes": dict(o.invalid_refused),
    }


def _resource_figures(o: Outcome, use: Sequence[NodeUse]) -> dict[str, Any]:
    """Per-node use, peak memory, CPU, and disk per committed transaction."""
    valid_rss = [u.peak_rss_mb for u in use if not math.isnan(u.peak_rss_mb)]
    return {
        "nodes": [u.to_obj() for u in use],
        "peak_rss_mb": round(max(valid_rss), 1) if valid_rss else math.nan,
        "cpu_s_total": round(sum(u.cpu_s for u in use), 1),
        "bytes_per_tx": round(
            sum(u.data_bytes_delta for u in use) / max(1, len(use)) / max(1, o.committed)
        ),
        "written_bytes_per_tx": round(
            sum(u.write_bytes_delta for u in use) / max(1, len(use)) / max(1, o.committed)
        ),
    }


def _driver_figures(log: DriveLog) -> dict[str, Any]:
    """The driver's own figures: late ticks, submit answer times and each rate step."""
    return {
        "late_ticks": log.late_ticks,
        "submit_p50_ms": round(percentile(sorted(log.answer_ms), 50), 1),
        "submit_p99_ms": round(percentile(sorted(log.answer_ms), 99), 1),
        "steps": [
            {
                "rate": s.rate,
                "seconds": round(s.ended - s.began, 1),
                "sent": s.sent,
                "committed_tps": round(s.committed / max(1e-9, s.ended - s.began), 1),
                "saturated": s.saturated,
            }
            for s in log.steps
        ],
    }


def write_json(path: str, doc: dict[str, Any]) -> None:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    with open(path, "w", encoding="utf-8") as f:
        json.dump(clean(doc), f, indent=2)
        f.write("\n")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def show(console: Console, title: str, rows: Sequence[tuple[str, Any, str]]) -> None:
    """A two-column table of (measure, value, note)."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    for name, value, note in rows:
        table.add_row(name, _fmt(value), note)
    console.print(table)


def show_nodes(console: Console, nodes: Sequence[dict[str, Any]]) -> None:
    table = Table(title="per node")
    anon = any(n.get("peak_anon_rss_mb") is not None for n in nodes)  # bench run samples it
    columns = ["node", "CPU s", "peak RSS MB", "data dir Δ MB", "written MB"]
    for col in columns + (["anon peak MB", "anon growth"] if anon else []):
        table.add_column(col, justify="right" if col != "node" else "left")
    for n in nodes:
        row = [
            n["name"],
            _fmt(n["cpu_s"]),
            _fmt(n["peak_rss_mb"]),
            _fmt(n["data_bytes_delta"] / 1e6),
            _fmt(n["write_bytes_delta"] / 1e6),
        ]
        if anon:
            growth = n.get("anon_rss_growth")
            row += [
                _fmt(n.get("peak_anon_rss_mb") or math.nan),
                "-" if growth is None else f"{100 * growth:+.1f} %",
            ]
        table.add_row(*row)
    console.print(table)

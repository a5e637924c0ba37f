"""``cityledger bench [run]|catchup|statesync|query``: measure a real network on this machine.

Every scenario starts its own network of node processes on loopback (in a temporary
directory unless ``--home`` is given), stops every process by its pid when it ends,
prints a table and optionally writes JSON (``--json FILE``). ``docs/performance.md``
describes the method and records the latest figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli.interrupt import sigterm_interrupts
from cli.output import console, err_console, fail
from ledger.errors import LedgerError

WORKLOADS = click.Choice(["mix", "small"])


class _DefaultGroup(click.Group):
    """A group whose first argument, when not a subcommand, goes to ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup)
def bench() -> None:
    """Benchmark a local network: throughput, latency, catch-up, queries (default: run)."""
    # Stopped with SIGTERM like with Ctrl-C: the scenario's finally blocks stop its nodes.
    sigterm_interrupts()


def _check_settings(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    from node.config import ConfigError, NodeConfig

    for setting in value:
        try:
            NodeConfig().apply_setting(setting)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--validators", default=4, show_default=True, help="Validator processes."),
        click.option(
            "--workload",
            type=WORKLOADS,
            default="mix",
            show_default=True,
            help="Realistic contract mix, or plain small transactions.",
        ),
        click.option("--seed", default=7, show_default=True, help="Workload seed."),
        click.option(
            "--json",
            "json_path",
            type=click.Path(dir_okay=False),
            help="Write the figures as JSON to this file.",
        ),
        click.option(
            "--home",
            default="",
            type=click.Path(file_okay=False),
            help="Where the network lives (default: a temporary directory).",
        ),
        click.option("--keep", is_flag=True, help="Keep the network's directory afterwards."),
        click.option(
            "--set",
            "settings",
            multiple=True,
            callback=_check_settings,
            metavar="SECTION.KEY=VALUE",
            help="Override a setting of every node's config.toml (repeatable), "
            "e.g. --set storage.block_cache_mb=256.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@bench.command()
@_common
@click.option("--txs", default=100_000, show_default=True, help="Timed transactions (5 % invalid).")
@click.option(
    "--rate",
    default=2000.0,
    show_default=True,
    help="Offered tx/s (with --ramp: the highest step).",
)
@click.option("--ramp", is_flag=True, help="Step the rate up until the network saturates.")
@click.option("--ramp-start", default=500.0, show_default=True, help="First step's tx/s.")
@click.option("--ramp-step", default=500.0, show_default=True, help="Increase per step.")
@click.option("--step-seconds", default=10.0, show_default=True, help="Seconds per step.")
@click.option(
    "--profile",
    "profile_dir",
    type=click.Path(file_okay=False),
    help="Sample every node with py-spy into this directory (pip install py-spy).",
)
@click.option(
    "--check-receipts",
    default=500,
    show_default=True,
    help="Committed transactions whose receipts are fetched and checked.",
)
@click.option("--mempool-max", type=int, default=None, help="Override [mempool] max_txs.")
def run(json_path: str | None, **kw: Any) -> None:
    """Throughput and finality latency at an offered rate, against the verification ceiling."""
    from benchmarks.cluster import BenchError
    from benchmarks.results import show, show_nodes
    from benchmarks.run import RunOptions, run_bench

    try:
        doc = run_bench(RunOptions(**kw), console)
    except BenchError as exc:
        fail(str(exc))
    _show_run(doc, show, show_nodes)
    _write(json_path, doc)


def _show_run(doc: dict[str, Any], show: Any, show_nodes: Any) -> None:
    o = doc["options"]
    rows = _throughput_rows(doc) + _latency_rows(doc) + _cost_rows(doc)
    if "receipts_checked" in doc:
        rows.append(
            (
                "receipts checked",
                sum(doc["receipts_checked"].values()),
                str(doc["receipts_checked"]),
            )
        )
    title = (
        f"cityledger bench: {o['validators']} validator(s), {o['workload']}, {doc['sent']:,} txs"
    )
    show(console, title, rows)
    if len(doc["steps"]) > 1:
        show(
            console,
            "ramp",
            [
                (
                    f"{s['rate']:,.0f} tx/s offered",
                    s["committed_tps"],
                    "saturated" if s["saturated"] else "",
                )
                for s in doc["steps"]
            ],
        )
    show_nodes(console, doc["nodes"])
    _show_profiles(doc, show)


Row = tuple[str, Any, str]


def _throughput_rows(doc: dict[str, Any]) -> list[Row]:
    """What was offered, accepted, committed, lost and refused."""
    return [
        ("offered", doc["offered_tps"], "tx/s"),
        ("accepted", doc["accepted_tps"], "tx/s"),
        ("committed", doc["committed_tps"], f"tx/s ({doc['committed']:,} committed)"),
        ("goodput", doc["goodput"], "committed / offered"),
        (
            "refused 429, sent again",
            f"{doc['refusals_429']:,}, {doc['retried']:,}",
            "after Retry-After, as a real client would",
        ),
        (
            "lost (accepted, never committed)",
            doc["lost"],
            f"+ {doc['stranded']:,} stranded behind a refused tx of their sender",
        ),
        ("valid refused", sum(doc["refused_valid"].values()), str(doc["refused_valid"] or "")),
        (
            "invalid sent / refused",
            f"{doc['invalid_sent']:,} / {doc['invalid_rejected']:,}",
            f"committed: {doc['invalid_committed']}",
        ),
    ]


def _latency_rows(doc: dict[str, Any]) -> list[Row]:
    """Submit answers, finality latency percentiles, blocks and rounds."""
    return [
        (
            "submit answered p50 / p99",
            f"{doc['submit_p50_ms']:,} / {doc['submit_p99_ms']:,}",
            "ms, batch scheduled to the node's answer",
        ),
        ("latency p50", doc["p50_ms"], "ms, submit to block announced"),
        ("latency p95", doc["p95_ms"], "ms"),
        ("latency p99", doc["p99_ms"], "ms"),
        ("latency max", doc["max_ms"], "ms"),
        (
            "accepted to announced p50 / p99",
            f"{doc['accepted_p50_ms']:,} / {doc['accepted_p99_ms']:,}",
            "ms, from the node's answer that took it",
        ),
        (
            "blocks",
            doc["blocks"],
            f"{doc['blocks_per_s']} blocks/s, {doc['txs_per_block']} tx/block",
        ),
        ("rounds per height", doc["rounds_per_height"], str(doc["rounds_histogram"])),
        ("longest block gap", doc["max_block_gap_s"], "s between announcements"),
        ("a height's phases", _phases(doc.get("height_phase_ms", {})), "ms, mean over the nodes"),
        ("validated ahead", *_validated(doc.get("validations", {}))),
    ]


def _validated(counts: dict[str, int]) -> tuple[str, str]:
    """``112 of 120`` proposals validated with the execution made ahead (all nodes)."""
    if not counts:
        return "-", "proposals: none validated (one validator, or speculate off)"
    total = counts.get("ahead", 0) + counts.get("executed", 0)
    return f"{counts.get('ahead', 0):,} of {total:,}", "proposals, the others executed on arrival"


def _phases(phases: dict[str, float]) -> str:
    """``propose 405 (wait 205, build 196), validate 0.1, ...`` (node/height_phases.py)."""
    if not phases:
        return "-"
    inner = ", ".join(f"{p} {phases[p]:,}" for p in ("wait", "build") if p in phases)
    out = [f"propose {phases['propose']:,}" + (f" ({inner})" if inner else "")]
    out += [f"{p} {phases[p]:,}" for p in ("validate", "prevotes", "precommits") if p in phases]
    return ", ".join(out)


def _cost_rows(doc: dict[str, Any]) -> list[Row]:
    """Memory, CPU and disk per transaction, and the verification ceiling."""
    return [
        ("peak RSS (max node)", doc["peak_rss_mb"], "MB"),
        (
            "node CPU",
            doc["cpu_s_total"],
            f"s (client {doc['client_cpu_s']} s, others {doc['other_cpu_s']} s)",
        ),
        (
            "node CPU per tx",
            doc.get("node_cpu_ms_per_tx", "-"),
            f"ms, all nodes: the cores allow {doc.get('cpu_bound_tps', '-')} tx/s at that cost",
        ),
        ("stored per tx", doc["bytes_per_tx"], "bytes of data dir growth, per node"),
        ("written per tx", doc["written_bytes_per_tx"], "bytes written to disk, per node"),
        (
            "ceiling",
            doc["ceiling_tps"],
            f"tx/s = {doc['ceiling']['verify_per_s_per_core']:,} verify/s x "
            f"{doc['ceiling']['cores']} cores / {doc['ceiling']['validators']}",
        ),
        ("efficiency", f"{100 * doc['efficiency']:.1f} %", "committed / ceiling"),
    ]


def _show_profiles(doc: dict[str, Any], show: Any) -> None:
    """Each sampled node's ten busiest activities (``--profile``)."""
    for name, prof in doc.get("profile", {}).items():
        show(
            console,
            f"profile {name}: {prof['busy_samples']:,} busy samples",
            [(a, share, "%") for a, share in prof["activities"][:10]],
        )


@bench.command()
@_common
@click.option(
    "--txs",
    default=100_000,
    show_default=True,
    help="Transactions committed while the validator is down.",
)
@click.option("--rate", default=2000.0, show_default=True, help="Offered tx/s meanwhile.")
@click.option(
    "--timeout",
    "timeout_s",
    default=900.0,
    show_default=True,
    help="Seconds allowed to reach the tip.",
)
@click.option(
    "--profile",
    "profile_dir",
    type=click.Path(file_okay=False),
    help="Sample the catching-up node with py-spy into this directory.",
)
def catchup(json_path: str | None, **kw: Any) -> None:
    """Stop a validator, commit --txs without it, restart it: its catch-up rate."""
    from benchmarks.catchup import CatchupOptions, run_catchup
    from benchmarks.cluster import BenchError
    from benchmarks.results import show

    try:
        doc = run_catchup(CatchupOptions(**kw), console)
    except BenchError as exc:
        fail(str(exc))
    show(
        console,
        f"catch-up of {doc['node']}",
        [
            ("blocks behind", doc["blocks"], f"heights {doc['stopped_at'] + 1}..{doc['tip']}"),
            ("transactions behind", doc["txs"], ""),
            (
                "committed while it was down",
                doc["committed_while_down"],
                f"at {doc['down_committed_tps']} tx/s by the others; "
                f"{doc['pending_at_restart']:,} still pending at the restart",
            ),
            ("time to tip", doc["time_to_tip_s"], "s from restart"),
            ("start-up", doc["startup_s"], "s until its API answered"),
            ("catch-up rate", doc["catchup_tps"], "tx/s"),
            ("catch-up rate", doc["catchup_blocks_per_s"], "blocks/s"),
            ("node's own figure", doc["reported_txs_per_s_max"], "tx/s (max in /v1/status)"),
            ("CPU", doc["cpu_s"], "s"),
            ("peak RSS", doc["peak_rss_mb"], "MB"),
        ],
    )
    _show_profiles(doc, show)
    _write(json_path, doc)


@bench.command()
@_common
@click.option("--txs", default=20_000, show_default=True, help="Transactions committed first.")
@click.option("--rate", default=1500.0, show_default=True, help="Offered tx/s meanwhile.")
@click.option(
    "--interval", default=50, show_default=True, help="[snapshots] interval of the validators."
)
@click.option("--timeout", "timeout_s", default=1800.0, show_default=True, help="Seconds per join.")
def statesync(json_path: str | None, **kw: Any) -> None:
    """A new node joins by state sync, then another by replaying every block: seconds from
    start to the tip for each (snapshot_join_s, replay_join_s)."""
    from benchmarks.cluster import BenchError
    from benchmarks.results import show
    from benchmarks.statesync import StateSyncOptions, run_statesync

    try:
        doc = run_statesync(StateSyncOptions(**kw), console)
    except BenchError as exc:
        fail(str(exc))
    synced = doc["state_sync"]["state_sync"] or {}
    show(
        console,
        "joining a network of " + f"{doc['chain_txs']:,} transactions, tip {doc['tip']}",
        [
            ("by state sync", doc["snapshot_join_s"], f"s (snapshot {doc['snapshot_height']}, "
             f"{synced.get('chunks', '?')} chunks, {synced.get('bytes', 0):,} bytes)"),
            ("by replaying blocks", doc["replay_join_s"], "s"),
            ("ratio", doc["ratio"], "state sync / replay"),
        ],
    )  # fmt: skip
    _write(json_path, doc)


@bench.command()
@_common
@click.option("--txs", default=30_000, show_default=True, help="Transactions of load.")
@click.option("--rate", default=1000.0, show_default=True, help="Offered tx/s of load.")
@click.option("--queries", default=2000, show_default=True, help="Queries at most.")
def query(json_path: str | None, **kw: Any) -> None:
    """Provenance and receipt-proof query latency, verified client-side, under load."""
    from benchmarks.cluster import BenchError
    from benchmarks.query import QueryOptions, run_query
    from benchmarks.results import show

    try:
        doc = run_query(QueryOptions(**kw), console)
    except BenchError as exc:
        fail(str(exc))
    rows = []
    for what in ("shipment", "receipt"):
        s = doc[what]
        rows += [
            (f"{what}: queries", s["count"], f"failures: {s['failures'] or 'none'}"),
            (f"{what}: node p50 / p99", f"{s['server_p50_ms']} / {s['server_p99_ms']}", "ms"),
            (
                f"{what}: verified p50 / p99",
                f"{s['p50_ms']} / {s['p99_ms']}",
                f"ms incl. client-side proof checks ({s['mean_entries']} records/answer)",
            ),
        ]
    rows.append(
        ("load", doc["load_offered_tps"], f"tx/s offered, {doc['load_committed']:,} committed")
    )
    show(console, "queries under load", rows)
    _write(json_path, doc)


@bench.command()
@click.option("--txs", default=50_000, show_default=True, help="Transactions of the mix.")
@click.option("--block-txs", default=1000, show_default=True, help="Transactions per block.")
@click.option("--workers", type=int, default=None, help="audit verify --workers.")
@click.option(
    "--streaming/--in-memory",
    default=None,
    help="audit verify --streaming / --in-memory (default: its own rule).",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False),
    help="Keep the chain's network here, and audit the one already there.",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write JSON here.")
def audit(json_path: str | None, **kw: Any) -> None:
    """Build a chain, stop its node, time `audit verify --home` on it: rate and peak memory."""
    from benchmarks.audit_bench import AuditBenchOptions, run_audit_bench
    from benchmarks.results import show
    from cli.audit_report import replay_kind
    from cli.leftovers import remove_leftovers_and_say

    remove_leftovers_and_say()
    try:
        doc = run_audit_bench(AuditBenchOptions(**kw), lambda s: err_console.print(s))
    except (RuntimeError, LedgerError) as exc:
        fail(str(exc))
    replayed = replay_kind(doc["segments"], doc["tree_beside"])
    show(
        console,
        f"offline audit of {doc['txs']:,} transactions in {doc['heights']:,} blocks",
        [
            ("audit rate", doc["audit_tps"], "tx/s (the audit's own figure)"),
            ("peak anonymous memory", doc["audit_peak_anon_mb"], "MB, largest process"),
            ("... all its processes", doc["audit_peak_anon_tree_mb"], "MB together"),
            ("peak resident size", doc["audit_peak_rss_mb"], "MB, with mapped table files"),
            ("store", doc["store_mb"], "MB of LevelDB files"),
            ("audit", doc["audit_s"], f"s; the whole command {doc['audit_wall_s']} s"),
            ("streamed", "yes" if doc["streamed"] else "no", replayed),
            ("load", doc["load_avg_1m"], f"1-minute load average on {doc['cores']} cores"),
        ],
    )
    _write(json_path, doc)


@bench.command()
@click.option("--workload", type=WORKLOADS, default="mix", show_default=True)
@click.option("--txs", default=20_000, show_default=True, help="Transactions (5 % invalid).")
@click.option("--validators", default=4, show_default=True, help="Validators of the network.")
@click.option("--block-txs", default=2000, show_default=True, help="Transactions per block.")
@click.option("--seed", default=7, show_default=True, help="Workload seed.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write JSON here.")
def stages(json_path: str | None, **kw: Any) -> None:
    """CPU per transaction of each step inside the nodes (in-process, no network)."""
    from benchmarks.results import show
    from benchmarks.stages import StageOptions, run_stages

    doc = run_stages(StageOptions(**kw))
    rows = [(step, us, "µs per transaction") for step, us in doc["us_per_tx"].items()]
    rows += [
        ("one validator", doc["validator_us_per_tx"], "µs per transaction, all its steps"),
        ("whole network", doc["network_ms_per_tx"], "ms CPU per transaction, every node"),
        ("cores allow", doc["cpu_bound_tps"], f"tx/s on {doc['cores']} cores at that cost"),
    ]
    show(
        console,
        f"steps of a transaction ({kw['workload']}, {doc['committed']:,} committed, {doc['code']})",
        rows,
    )
    _write(json_path, doc)


def _write(json_path: str | None, doc: dict[str, Any]) -> None:
    from benchmarks.results import write_json

    if json_path:
        write_json(json_path, doc)
        console.print(f"figures written to {json_path}")

"""``cityledger audit verify|checkpoint|consistency``: the auditor's commands.

``verify`` is a thin layer over :mod:`node.audit` (the engine): it picks the
block source (a stopped node's home, or a node's API), shows a progress bar
with rate and ETA, and prints the findings. ``checkpoint`` writes what a city
publishes (docs/audit.md): a certified header with its log size and root,
optionally signed with ``Purpose.CHECKPOINT``. ``consistency`` proves, with one
RFC 6962 consistency proof, that a node's ledger today extends a checkpoint. The
checkpoint format and both checks are :mod:`lightclient.checkpoints`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.audit_report import (
    AuditContext,
    not_checked,
    render_html,
    report_json,
    write_atomically,
)
from cli.audit_store import STREAM_ABOVE_MB, damaged_store_message, offline_store, should_stream
from cli.client import MISSING_GENESIS, NodeClient, NodeError, genesis_option, node_option
from cli.interrupt import sigterm_interrupts
from cli.keys_cmd import key_option, load_key
from cli.leftovers import remove_leftovers_and_say
from cli.options import json_option
from cli.output import console, err_console, fail, print_json
from cli.render import fmt_time, kv
from cli.verified_reads import Reads, freshness_text, max_age_option
from ledger.block import Block, BlockHeader
from ledger.block_prune import pruned_to
from ledger.crypto import PrivateKey, Purpose
from ledger.encoding import Value, encode
from ledger.errors import LedgerError, StoreDamagedError
from ledger.genesis import Genesis
from ledger.storage import keys
from ledger.storage.temp_dirs import owned_temp_dir
from ledger.votes import CommitCertificate
from lightclient.answers import Verified
from lightclient.checkpoints import (
    ExtensionView,
    checkpoint_document,
    checkpoint_message,
    read_checkpoint,
    read_extension,
)
from lightclient.headers import verify_certified
from node.audit import AuditReport, ChainAuditor, StoreSource
from node.audit_block_pruned import audit_block_pruned
from node.config import Home

PREFETCH = 32


class RemoteSource:
    """Blocks downloaded from a node's API, a few requests ahead of the audit.

    A node redacts the transactions a reader may not see (docs/api.md), and an audit
    must re-execute every one: reads are signed with the client's key, and a block
    that still comes back redacted stops the audit with what to do.
    """

    def __init__(self, client: NodeClient) -> None:
        self.client = client
        self._tip = int(client.get("/v1/status")["height"])
        self._tip_cert: bytes | None = None
        self.tip_block: bytes | None = None

    def tip(self) -> int:
        return self._tip

    def blocks(self) -> Iterator[tuple[int, bytes | None]]:
        local = threading.local()

        def fetch(height: int) -> dict[str, Value]:
            if not hasattr(local, "client"):
                local.client = self.client.clone()
            answer: dict[str, Value] = local.client.get(f"/v1/blocks/{height}")
            if answer.get("redacted"):
                raise NodeError(
                    f"the node redacted transactions of block {height} for this reader: an "
                    "online audit re-executes every transaction, so give --key with an "
                    "auditor's member key (or audit a node's store offline with --home)"
                )
            return answer

        with ThreadPoolExecutor(4) as pool:
            window: dict[int, Future[dict[str, Value]]] = {}
            for height in range(1, self._tip + 1):
                for ahead in range(height, min(height + PREFETCH, self._tip + 1)):
                    if ahead not in window:
                        window[ahead] = pool.submit(fetch, ahead)
                answer = window.pop(height).result()
                raw = encode(answer["block"]) if "block" in answer else None
                if height == self._tip:
                    self.tip_block = raw
                    if answer.get("certificate") is not None:
                        self._tip_cert = encode(answer["certificate"])
                yield height, raw

    def tip_certificate(self) -> bytes | None:
        return self._tip_cert


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]auditing[/] height"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[txs]:,} txs · {task.fields[rate]:,.0f} tx/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


@click.group()
def audit() -> None:
    """Re-check the chain from genesis; publish and check checkpoints."""


@audit.command("verify")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help="A stopped node's home (or a copy): audit its store offline.",
)
@click.option(
    "--node",
    default=None,
    envvar="CITYLEDGER_NODE",
    help="Audit online, downloading every block from this node's API.",
)
@genesis_option(required=False)
@click.option(
    "--workers",
    type=int,
    default=None,
    help=(
        "Processes (default: every core). With --home and 2 or more, blocks are "
        "re-executed in parallel segments; otherwise one replay, signatures checked "
        "in this many processes beside it (0 = none)."
    ),
)
@key_option(help_text="With --node: an auditor's member key, which reads every transaction.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the auditor's report to FILE: HTML, or PDF / JSON when FILE ends in "
    ".pdf / .json.",
)
@click.option(
    "--streaming/--in-memory",
    default=None,
    help="Keep the re-executed rows in a scratch store on disk and compare in key order, "
    "memory bounded whatever the chain's length (default: online always; offline when "
    f"holding the rows would take over {STREAM_ABOVE_MB} MB or the memory available).",
)
@json_option()
def verify_chain(
    home: str | None,
    node: str | None,
    genesis_path: str | None,
    workers: int | None,
    key_path: str | None,
    report_path: str | None,
    streaming: bool | None,
    as_json: bool,
) -> None:
    """Every block from genesis: links, certificates, signatures, roots, re-execution."""
    if home is not None and _from_environment("node"):
        node = None  # --home on the command line wins over a CITYLEDGER_NODE left in the env
    if (home is None) == (node is None):
        fail("give exactly one of --home (offline) or --node URL (online)")
    if genesis_path is None:
        if home is None:
            fail(MISSING_GENESIS)
        genesis_path = Home(home).genesis
        if not as_json:
            err_console.print(
                f"[yellow]note:[/] using {genesis_path}; an auditor should pass "
                "a genesis file obtained independently with --genesis"
            )
    genesis = Genesis.load(genesis_path)
    # Stopped with SIGTERM as with Ctrl-C: the scratch stores and the store's private copy
    # are removed, and the signature pool and the tree process are stopped.
    sigterm_interrupts()
    remove_leftovers_and_say()
    started_at = datetime.now(UTC)
    if home is None:
        remote = RemoteSource(NodeClient(node or "", key=_key(key_path)))
        stream = streaming is not False  # nothing to hold but the scratch: bounded by default
        report = _run(genesis, remote, None, workers, quiet=as_json, streaming=stream)
        tip_block = remote.tip_block
    else:
        report, tip_block = _audit_offline(home, genesis, workers, streaming, quiet=as_json)
    ctx = AuditContext(
        genesis_path,
        genesis.hash,
        _block_hash(tip_block),
        started_at,
        offline=home is not None,
        where=home if home is not None else node or "",
    )
    _print_report(report, ctx, as_json)
    if report_path is not None:
        _write_report(report_path, report, ctx, quiet=as_json)
    if not report.ok:
        raise SystemExit(1)


def _block_hash(raw: bytes | None) -> bytes | None:
    """The hash of the source's tip block, if it decodes (the audit says whether it checks)."""
    if raw is None:
        return None
    try:
        return Block.decode(raw).hash
    except LedgerError:
        return None


def _write_report(path: str, report: AuditReport, ctx: AuditContext, quiet: bool) -> None:
    content: str | bytes
    if path.lower().endswith(".json"):
        content = json.dumps(report_json(report, ctx), indent=2) + "\n"
    elif path.lower().endswith(".pdf"):
        from cli.audit_pdf import render_pdf  # reportlab: a third of a second, for PDFs only

        content = render_pdf(report, ctx)
    else:
        content = render_html(report, ctx)
    try:
        write_atomically(path, content)
    except OSError as exc:
        fail(f"cannot write the report to {path}: {exc}")
    if not quiet:
        err_console.print(f"report written to {path}")


def _audit_offline(
    home: str, genesis: Genesis, workers: int | None, streaming: bool | None, quiet: bool
) -> tuple[AuditReport, bytes | None]:
    """The audit of a stopped node's store: (the report, the stored tip block)."""
    data = Home(home).data
    if not os.path.isdir(data):
        fail(f"{data} does not exist: is {home} a node home?")
    if streaming is None:
        streaming = should_stream(data)
    try:
        with offline_store(home, genesis, streaming) as (store, second_copy):
            if pruned_to(store) > 1:  # block-pruned: what its headers and kept blocks prove
                report = audit_block_pruned(store, genesis)
                report.not_checked.append(_pruning_claim(home, report))
                return report, store.get(keys.block_key(report.tip))
            source = StoreSource(store)
            report = _run(
                genesis,
                source,
                store,
                workers,
                quiet=quiet,
                streaming=streaming,
                second=second_copy,
            )
            return report, store.get(keys.block_key(source.tip()))
    except StoreDamagedError as exc:
        fail(escape(damaged_store_message(exc, data)))


def _pruning_claim(home: str, report: AuditReport) -> str:
    """The store's claim to have pruned its blocks, beside what its config.toml says (the
    audit cannot tell blocks pruned from blocks deleted: docs/audit.md)."""
    claim = f"the store says it keeps blocks from height {report.oldest_block} on"
    try:
        keep = Home(home).load_config().storage.block_keep_heights
    except LedgerError as exc:
        return f"{claim}; its config.toml could not be read to compare ({exc})"
    if keep == 0:
        return (
            f"{claim}, but its config.toml keeps every block (block_keep_heights = 0): "
            "pruning was switched off since, or the blocks were removed otherwise"
        )
    return f"{claim}; its config.toml keeps the last {keep} (tip {report.tip})"


def _from_environment(param: str) -> bool:
    """Whether this command's ``param`` was taken from an environment variable."""
    source = click.get_current_context().get_parameter_source(param)
    return source is click.core.ParameterSource.ENVIRONMENT


def _key(key_path: str | None) -> PrivateKey | None:
    return None if key_path is None else load_key(key_path)


def _run(
    genesis: Genesis,
    source: Any,
    store: Any,
    workers: int | None,
    quiet: bool,
    streaming: bool,
    second: str | None = None,
) -> AuditReport:
    progress = _progress_bar()
    task = progress.add_task("audit", total=source.tip(), txs=0, rate=0.0)
    started = time.perf_counter()

    def tick(height: int, tip: int, txs: int) -> None:
        if quiet:
            return
        if not progress.live.is_started:
            progress.start()  # only now: the signature pool is already running
        rate = txs / max(time.perf_counter() - started, 1e-9)
        progress.update(task, completed=height, txs=txs, rate=rate)

    with owned_temp_dir("cityledger-audit-scratch-") as scratch:
        auditor = ChainAuditor(
            genesis,
            workers=workers,
            progress=tick,
            scratch_dir=scratch if streaming else None,
            second_copy=second,
        )
        try:
            return auditor.run(source, compare_with=store)
        finally:
            if progress.live.is_started:
                progress.stop()


def _print_report(report: AuditReport, ctx: AuditContext, as_json: bool) -> None:
    if as_json:
        print_json(report_json(report, ctx))
        return
    label = escape(ctx.label)  # a path or URL is text, not rich markup
    rows = (
        f"{report.rows_compared:,} compared byte for byte"
        if report.rows_compared
        else ("not compared (a block did not check out)" if ctx.offline else "not compared")
    )
    if report.oldest_block > 1:
        rows = "not compared (a block-pruned store: nothing re-executed to compare with)"
    if report.rows_compared and report.heights < report.tip:
        rows += f" (blocks, certificates, receipts of heights 1 to {report.heights})"
    console.print(
        kv(
            [
                ("audit", label),
                ("chain", report.chain_id),
                ("blocks", _blocks_line(report)),
                (
                    "transactions",
                    f"{report.txs:,} in {report.seconds:.1f} s ({report.tx_rate:,.0f} tx/s)",
                ),
                ("evidence", f"{report.evidence} committed pieces checked"),
                ("stored rows", rows),
            ]
        )
    )
    mismatch = report.genesis_mismatch
    if mismatch is not None:
        console.print(f"[bold red]✘ {mismatch.problem}[/]")
        return
    if report.ok and report.oldest_block > 1:
        console.print(
            f"[bold green]✔ what this block-pruned store holds checks out[/], {label}: "
            f"headers and certificates from genesis to height {report.tip}, the blocks and "
            f"receipts from height {report.oldest_block} on; nothing was re-executed"
        )
    elif report.ok:
        console.print(
            f"[bold green]✔ the chain checks out[/], {label}, from genesis to height "
            f"{report.tip}: hash links, certificates, signatures, tx/log/state/results/"
            "evidence roots, committed evidence and re-execution"
        )
    else:
        _print_findings(report, label)
    for gap in not_checked(report, ctx):  # a pruned store's, on success too
        console.print(f"[yellow]not checked:[/] {escape(gap)}")


def _print_findings(report: AuditReport, label: str) -> None:
    table = Table(title=f"[bold red]audit FAILED[/], {label}", title_justify="left")
    for name in ("height", "record", "what differs"):
        table.add_column(name)
    for f in sorted(report.findings, key=lambda f: (f.height is None, f.height or 0)):
        height = "-" if f.height is None else str(f.height)
        table.add_row(height, escape(f.record), escape(f.problem))
    console.print(table)
    if report.more_findings:
        console.print(f"… and {report.more_findings} more")


def _blocks_line(report: AuditReport) -> str:
    """``10 of 10``, or how far re-execution and the link checks each went."""
    if report.linked <= report.heights:
        return f"{report.heights} of {report.tip}"
    return (
        f"{report.heights} of {report.tip} re-executed, "
        f"{report.linked} of {report.tip} linked and certified"
    )


@audit.command()
@node_option()
@genesis_option(required=False)
@key_option(help_text="Sign the checkpoint with this key (Purpose.CHECKPOINT).")
@max_age_option()
def checkpoint(node: str, genesis_path: str | None, key_path: str | None, max_age_s: float) -> None:
    """Print the latest certified checkpoint as JSON (publish it; check it later)."""
    client = NodeClient(node)
    answer = client.get("/v1/checkpoint")
    header = BlockHeader.from_obj(answer["header"])
    cert = CommitCertificate.from_obj(answer["certificate"])
    genesis_hash = answer.get("genesis_hash")
    if genesis_path is not None:
        reads = Reads(client, Genesis.load(genesis_path), max_age_s)
        verified = reads.accept(lambda: verify_certified(answer, reads.genesis), reads.current())
        genesis_hash = reads.genesis.hash
        err_console.print(freshness_text(verified))
    else:
        err_console.print(
            "[yellow]note:[/] not verified; give --genesis to check the "
            "certificate before publishing"
        )
    if not isinstance(genesis_hash, bytes):
        fail("the node did not name its genesis hash")
    cp = checkpoint_document(header, cert, genesis_hash)
    if key_path is not None:
        key = load_key(key_path)
        cp["signer"] = key.public_key.hex()
        cp["signature"] = key.sign(
            Purpose.CHECKPOINT, header.chain_id, checkpoint_message(cp)
        ).hex()
    print(json.dumps(cp, indent=2))


@audit.command()
@click.argument("checkpoint_file", metavar="CHECKPOINT", type=click.File("r"))
@node_option()
@genesis_option()
@click.option("--signer", default=None, help="Require the checkpoint signed by this key (hex).")
@max_age_option()
@json_option()
def consistency(
    checkpoint_file: Any,
    node: str,
    genesis_path: str,
    signer: str | None,
    max_age_s: float,
    as_json: bool,
) -> None:
    """Prove today's ledger extends CHECKPOINT (one consistency proof, no history download)."""
    genesis = Genesis.load(genesis_path)
    # first: Reads fetches the validator history a checkpoint past a set change needs
    reads = Reads(NodeClient(node, chain_id=genesis.chain_id), genesis, max_age_s)
    try:
        old, cp = read_checkpoint(json.load(checkpoint_file), genesis)
    except ValueError as exc:
        fail(f"{checkpoint_file.name}: {exc}")
    if signer is not None and cp.get("signer") != signer.lower():
        fail("the checkpoint is not signed by --signer")
    answer = reads.client.get("/v1/log/consistency", {"old": old.header.log_size})
    verified = reads.accept(lambda: read_extension(answer, old, genesis), reads.current())
    _print_extension(verified, cp.get("signer"), as_json)


def _print_extension(verified: Verified[ExtensionView], signer: Any, as_json: bool) -> None:
    old, new, proof = verified.view.old, verified.certified, verified.view.proof
    if as_json:
        print_json(
            {
                "consistent": True,
                "checkpoint_height": old.height,
                "checkpoint_log_size": old.header.log_size,
                "height": new.height,
                "log_size": new.header.log_size,
                "proof_hashes": len(proof.path),
                "signer": signer,
            }
        )
        return
    console.print(
        f"checkpoint: height {old.height} ({fmt_time(old.header.time_ms)}), "
        f"log size {old.header.log_size}"
        + (f", signed by {signer[:16]}…" if signer else ", unsigned")
    )
    console.print("  " + old.describe())
    console.print(
        f"today:      height {new.height} ({fmt_time(new.header.time_ms)}), "
        f"log size {new.header.log_size}"
    )
    console.print(freshness_text(verified))
    console.print(
        f"[bold green]✔ today's ledger extends the checkpoint[/]: RFC 6962 "
        f"consistency proof of {len(proof.path)} hashes verified; no transaction "
        "of the checkpoint was removed, reordered or altered"
    )

"""The auditor's report of ``audit verify``: JSON, and a self-contained HTML page.

The page is for a city council: one file, inline CSS, no script and nothing loaded
from elsewhere, so it opens the same in any browser and can be archived or mailed.
Every value on it comes from the audited chain or the auditor's machine and is
HTML-escaped: a hostile chain's strings (a state key, a transaction kind) show as
text, never as markup. The PDF (cli/audit_pdf.py) lays out the same facts.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from node.audit import AuditReport, Finding

SHOWN_BYTES = 64  # of a stored or expected value: enough to see the difference


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What the report says beside the engine's figures: which chain, from where, when."""

    genesis_file: str
    genesis_hash: bytes
    tip_hash: bytes | None  # the source's tip block (verified only when the audit passed)
    started_at: datetime  # UTC
    offline: bool
    where: str  # the node home (offline) or the node URL (online)

    @property
    def label(self) -> str:
        """``offline (the store of HOME)`` or ``online (URL)``."""
        if self.offline:
            return f"offline (the store of {self.where})"
        return f"online ({self.where})"

    @property
    def source_text(self) -> str:
        if self.offline:
            return f"offline: the store of {self.where}, read from a private copy"
        return f"online: {self.where}, as the node serves it"

    @property
    def started_text(self) -> str:
        return self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def checked_steps(offline: bool, oldest_block: int = 0) -> list[str]:
    """What ``audit verify`` checks, in the order it does (docs/audit.md); for a
    block-pruned store (``oldest_block`` > 1) what node/audit_block_pruned.py checks."""
    if oldest_block > 1:
        return [
            "every header from genesis to the tip (kept for pruned blocks) decodes and links "
            "to the previous one by its hash, height and time, with the chain id of the genesis",
            "every height's certificate carries more than 2/3 of the voting power of the "
            "validator set the previous certified header named (block 1: the genesis set), "
            "and is the one the next header's last_cert_hash names",
            f"every kept block (height {oldest_block} on): its transaction and evidence "
            "roots, every transaction signature, its receipts against the results root",
        ]
    steps = [
        "every block decodes canonically and links to the previous one by its hash, "
        "height and time, with the chain id of the genesis",
        "every block was committed by a certificate carrying more than 2/3 of the voting "
        "power of the validator set in force at its height; the proposer is a validator",
        "every transaction signature",
        "the transaction root of every block",
        "every block re-executed from the genesis state: the log, state and results "
        "roots of its header, byte for byte",
        "every piece of committed equivocation evidence (both signatures, a real "
        "equivocation, its height window, no offence twice) and the evidence root",
    ]
    if offline:
        steps.append(
            "every stored row of the chain (blocks, certificates, receipts, indexes, log "
            "and state nodes and values, evidence) compared byte for byte with the "
            "re-executed one, both ways"
        )
    return steps


def not_checked(report: AuditReport, ctx: AuditContext) -> list[str]:
    """What the audit could not check, said plainly (the engine's sentences, node/audit.py)."""
    gaps = list(report.not_checked)
    if report.linked < report.tip and not report.genesis_mismatch:
        gaps.append(f"blocks {report.linked + 1} to {report.tip}: not reached")
    if report.genesis_mismatch is not None:
        gaps.append("the whole chain: it follows another genesis than the file given")
    return gaps


def _short(value: bytes | None, other: bytes | None = None) -> str | None:
    """``value`` in hex; a long one as the bytes around its first difference from ``other``."""
    if value is None:
        return None
    if len(value) <= SHOWN_BYTES:
        return value.hex()
    pairs = zip(value, other or b"", strict=False)
    at = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(value), len(other or b"")))
    start = max(0, min(at - SHOWN_BYTES // 4, len(value) - SHOWN_BYTES))
    end = start + SHOWN_BYTES
    before, after = ("…" if start else ""), ("…" if end < len(value) else "")
    window = f"{before}{value[start:end].hex()}{after}"
    return f"{window} (bytes {start} to {end - 1} of {len(value)})"


def finding_json(f: Finding) -> dict[str, Any]:
    """A finding with every field the engine knows (absent ones left out)."""
    doc: dict[str, Any] = {"height": f.height, "record": f.record, "problem": f.problem}
    extra = {
        "tx_index": f.tx_index,
        "tx_hash": None if f.tx_hash is None else f.tx_hash.hex(),
        "tx_kind": f.tx_kind,
        "key": None if f.key is None else f.key.hex(),
        "stored": _short(f.stored, f.expected),
        "expected": _short(f.expected, f.stored),
    }
    doc.update({k: v for k, v in extra.items() if v is not None})
    return doc


def report_json(report: AuditReport, ctx: AuditContext) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "chain_id": report.chain_id,
        "genesis_hash": ctx.genesis_hash.hex(),
        "genesis_file": ctx.genesis_file,
        "tip": report.tip,
        "tip_hash": None if ctx.tip_hash is None else ctx.tip_hash.hex(),
        "started_at": ctx.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"kind": "offline" if ctx.offline else "online", "where": ctx.where},
        "heights": report.heights,
        "linked": report.linked,
        "txs": report.txs,
        "seconds": round(report.seconds, 3),
        "tx_per_s": round(report.tx_rate),
        "rows_compared": report.rows_compared,
        "segments": report.segments,
        "streamed": report.streamed,
        "tree_beside": report.tree_beside,
        "evidence": report.evidence,
        "oldest_state_height": report.oldest_state,  # a pruned store's window; 0: archive
        "oldest_block_height": report.oldest_block,  # a block-pruned store's; 0: archive
        "checked": checked_steps(ctx.offline, report.oldest_block),
        "not_checked": not_checked(report, ctx),
        "findings": [finding_json(f) for f in report.findings],
        "more_findings": report.more_findings,
    }


STYLE = """
body{font-family:Georgia,serif;max-width:60em;margin:2em auto;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em}
.ok{color:#17622b}.bad{color:#a11}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eee}code{font-family:monospace;word-break:break-all}
"""


def chain_facts(report: AuditReport, ctx: AuditContext) -> list[tuple[str, str, bool]]:
    """(name, value, shown as code) of the chain audited, for every format of the report."""
    tip_hash = "unknown" if ctx.tip_hash is None else ctx.tip_hash.hex()
    return [
        ("Chain", report.chain_id, False),
        ("Genesis hash", ctx.genesis_hash.hex(), True),
        ("Genesis file used", ctx.genesis_file, False),
        ("Tip height", str(report.tip), False),
        ("Tip block hash", tip_hash, True),
        ("Audit ran", ctx.started_text, False),
        ("Source", ctx.source_text, False),
    ]


def figure_facts(report: AuditReport, ctx: AuditContext) -> list[tuple[str, str]]:
    rows = (
        f"{report.rows_compared:,} compared byte for byte"
        if report.rows_compared
        else ("none compared" if ctx.offline else "not compared (online audit)")
    )
    return [
        ("Blocks re-executed", f"{report.heights:,} of {report.tip:,}"),
        ("Blocks linked and certified", f"{report.linked:,} of {report.tip:,}"),
        ("Transactions", f"{report.txs:,}"),
        ("Seconds", f"{report.seconds:.1f}"),
        ("Stored rows", rows),
        ("Evidence pieces", f"{report.evidence:,} checked"),
        ("Re-executed in", replay_kind(report.segments, report.tree_beside)),
    ]


def replay_kind(segments: int, tree_beside: bool) -> str:
    """How the chain was re-executed: in parallel segments (how many), or in one replay."""
    if segments:
        return f"{segments} parallel segments"
    return "one replay, the state tree beside it" if tree_beside else "one replay"


def finding_details(f: Finding) -> list[tuple[str, str]]:
    """What the engine knows of a finding beside its problem: (name, value)."""
    return [
        (name, value)
        for name, value in (
            ("transaction index", None if f.tx_index is None else str(f.tx_index)),
            ("transaction hash", None if f.tx_hash is None else f.tx_hash.hex()),
            ("transaction kind", f.tx_kind),
            ("record key", None if f.key is None else f.key.hex()),
            ("stored", _short(f.stored, f.expected)),
            ("expected", _short(f.expected, f.stored)),
        )
        if value is not None
    ]


def ordered_findings(report: AuditReport) -> list[Finding]:
    return sorted(report.findings, key=lambda f: (f.height is None, f.height or 0))


def verdict_text(report: AuditReport) -> str:
    if not report.ok:
        return "The audit FOUND PROBLEMS."
    if report.oldest_block > 1:
        return "What this block-pruned store holds checks out (see what was not checked)."
    return "The chain checks out."


def _row(name: str, value: str, code: bool = False) -> str:
    shown = f"<code>{escape(value)}</code>" if code else escape(value)
    return f"<tr><th>{escape(name)}</th><td>{shown}</td></tr>"


def _finding_row(f: Finding) -> str:
    more = "".join(f"<br>{escape(n)}: <code>{escape(v)}</code>" for n, v in finding_details(f))
    height = "-" if f.height is None else str(f.height)
    return (
        f"<tr><td>{escape(height)}</td><td>{escape(f.record)}</td>"
        f"<td>{escape(f.problem)}{more}</td></tr>"
    )


def _findings(report: AuditReport, ctx: AuditContext) -> list[str]:
    if report.ok:
        return ["<h2>Findings</h2>", "<p>None.</p>"]
    ordered = ordered_findings(report)
    out = [
        "<h2>Findings</h2>",
        "<table><tr><th>Height</th><th>Record</th><th>Problem</th></tr>",
        *(_finding_row(f) for f in ordered),
        "</table>",
    ]
    if report.more_findings:
        out.append(f"<p>… and {report.more_findings:,} more not listed.</p>")
    gaps = not_checked(report, ctx)
    out += ["<h2>What could not be checked</h2>", "<ul>"]
    out += [f"<li>{escape(g)}</li>" for g in gaps] or ["<li>Nothing.</li>"]
    return [*out, "</ul>"]


def render_html(report: AuditReport, ctx: AuditContext) -> str:
    """The whole page: one string, no external resource, every value escaped."""
    tone = "ok" if report.ok else "bad"
    verdict = f'<p class="{tone}"><strong>{verdict_text(report)}</strong></p>'
    title = f"Audit of {report.chain_id}, {ctx.label}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        verdict,
        "<h2>The chain</h2><table>",
        *(_row(name, value, code) for name, value, code in chain_facts(report, ctx)),
        "</table><h2>Figures</h2><table>",
        *(_row(name, value) for name, value in figure_facts(report, ctx)),
        "</table><h2>What was checked</h2><ol>",
        *(f"<li>{escape(step)}</li>" for step in checked_steps(ctx.offline, report.oldest_block)),
        "</ol>",
        *_findings(report, ctx),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_atomically(path: str, content: str | bytes) -> None:
    """Write ``content`` to ``path`` via a temporary file beside it; mode 0644."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".audit-report-")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

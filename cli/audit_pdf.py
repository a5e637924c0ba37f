"""The auditor's report as a PDF: the same facts as the HTML page, laid out for print.

A council's clerk files a PDF, not a web page. :func:`render_pdf` lays out exactly what
:mod:`cli.audit_report` puts on the page, the findings first (the verdict, every finding
with what the engine knows of it, what could not be checked; then the chain, the figures
and what was checked)
with ReportLab's flowables: no browser, nothing fetched, the standard PDF fonts. Every
value from the chain is escaped before it reaches ReportLab's paragraph markup, so a
hostile string (a state key ``<font …>``) prints as text.
"""

from __future__ import annotations

import io
from html import escape
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cli.audit_report import (
    AuditContext,
    chain_facts,
    checked_steps,
    figure_facts,
    finding_details,
    not_checked,
    ordered_findings,
    verdict_text,
)
from node.audit import AuditReport, Finding

GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
    ]
)
HEADED = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
    ]
)


def _styles() -> dict[str, ParagraphStyle]:
    sheet = getSampleStyleSheet()
    body = ParagraphStyle("cell", parent=sheet["BodyText"], fontSize=9, leading=11)
    return {
        "title": sheet["Title"],
        "h2": sheet["Heading2"],
        "body": body,
        "code": ParagraphStyle("code", parent=body, fontName="Courier", fontSize=8),
        "ok": ParagraphStyle("ok", parent=sheet["Heading2"], textColor=colors.darkgreen),
        "bad": ParagraphStyle("bad", parent=sheet["Heading2"], textColor=colors.darkred),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _facts(rows: list[tuple[str, str, bool]], st: dict[str, ParagraphStyle]) -> Table:
    cells = [[_p(n, st["body"]), _p(v, st["code"] if code else st["body"])] for n, v, code in rows]
    table = Table(cells, colWidths=[45 * mm, 125 * mm])
    table.setStyle(GRID)
    return table


def _finding_cell(f: Finding, st: dict[str, ParagraphStyle]) -> list[Paragraph]:
    cell = [_p(f.problem, st["body"])]
    cell += [_p(f"{name}: {value}", st["code"]) for name, value in finding_details(f)]
    return cell


def _findings(report: AuditReport, st: dict[str, ParagraphStyle]) -> list[Any]:
    if report.ok:
        return [_p("None.", st["body"])]
    head = [_p(t, st["body"]) for t in ("Height", "Record", "Problem")]
    rows: list[list[Any]] = [head]
    for f in ordered_findings(report):
        height = "-" if f.height is None else str(f.height)
        record = f.record if f.tx_hash is None else f.record.split(" (")[0]  # hash below
        rows.append([_p(height, st["body"]), _p(record, st["body"]), _finding_cell(f, st)])
    table = Table(rows, colWidths=[16 * mm, 50 * mm, 104 * mm], repeatRows=1)
    table.setStyle(HEADED)
    out: list[Any] = [table]
    if report.more_findings:
        out.append(_p(f"… and {report.more_findings:,} more not listed.", st["body"]))
    return out


def _numbered(items: list[str], st: dict[str, ParagraphStyle], bullet: str = "") -> list[Any]:
    return [_p(f"{bullet or f'{i}.'} {item}", st["body"]) for i, item in enumerate(items, start=1)]


def render_pdf(report: AuditReport, ctx: AuditContext) -> bytes:
    """The report as the bytes of a PDF file (A4)."""
    st = _styles()
    story: list[Any] = [
        _p(f"Audit of {report.chain_id}", st["title"]),
        _p(ctx.label, st["body"]),
        _p(verdict_text(report), st["ok" if report.ok else "bad"]),
        _p("Findings", st["h2"]),
        *_findings(report, st),
    ]
    if not report.ok or report.not_checked:  # first: what a reader must know (a pruned store's too)
        gaps = not_checked(report, ctx) or ["Nothing."]
        story += [_p("What could not be checked", st["h2"]), *_numbered(gaps, st, "•")]
    story += [
        _p("The chain", st["h2"]),
        _facts(chain_facts(report, ctx), st),
        _p("Figures", st["h2"]),
        _facts([(n, v, False) for n, v in figure_facts(report, ctx)], st),
        _p("What was checked", st["h2"]),
        *_numbered(checked_steps(ctx.offline, report.oldest_block), st),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"Audit of {report.chain_id}, {ctx.label}",
        author="cityledger audit verify",
        leftMargin=20 * mm,
        rightMargin=20 * mm,
    )
    doc.build([*story, Spacer(1, 1)])
    return out.getvalue()

"""``audit verify --report FILE.pdf``: the report of a tampered demo chain as a PDF, read
back and its first page rendered to ``build/audit-report-page1.png`` (git-ignored)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2 as pdfium

from cli.audit_pdf import render_pdf
from cli.audit_report import AuditContext
from ledger.block import Block
from ledger.storage import keys, open_leveldb
from node.audit import AuditReport, Finding
from tests.unit.cli.kit import message, rewrite_block, run
from tests.unit.cli.test_audit import flip, leveldb_home
from tests.unit.node.api.test_demo_confidential import demo_node

PAGE_PNG = Path(__file__).resolve().parents[3] / "build" / "audit-report-page1.png"


def _tamper_demo(tmp_path: Path) -> tuple[Path, list[int]]:
    """The demo chain in a node home: a receipt flipped, then two signatures forged."""
    node = demo_node()
    home = leveldb_home(node, tmp_path)  # type: ignore[arg-type]
    store = open_leveldb(str(home / "data"))
    try:
        with_txs = [
            h
            for h in range(1, node.chain.head().height + 1)
            if Block.decode(store.get(keys.block_key(h)) or b"").txs
        ]
        receipt, first, later = with_txs[0], with_txs[2], with_txs[-2]
        flip(store, keys.receipt_key(receipt, 0), 30)  # type: ignore[arg-type]
        for height in (first, later):
            rewrite_block(height, lambda b: b["txs"][0].update(signature=bytes(64)))(store)
    finally:
        store.close()
    return home, [receipt, first, later]


def test_pdf_report_of_a_tampered_demo_chain(tmp_path: Path) -> None:
    home, (receipt, first, later) = _tamper_demo(tmp_path)
    out = tmp_path / "audit.pdf"
    args = ["audit", "verify", "--home", str(home), "--genesis", str(home / "genesis.json")]
    result = run([*args, "--workers", "0", "--report", str(out)])
    assert result.exit_code == 1, message(result)
    assert out.read_bytes().startswith(b"%PDF-")
    pdf = pdfium.PdfDocument(str(out))
    try:
        assert 1 <= len(pdf) <= 4
        text = " ".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        words = " ".join(text.split())
        assert "Audit of cityledger-demo offline (the store of" in words
        assert "The audit FOUND PROBLEMS." in words
        assert re.search(rf"\b{receipt} receipt of transaction 0 differs from", words), words
        for height in (first, later):
            assert re.search(rf"\b{height} transaction 0 bad signature transaction index: 0", words)
        assert f"state after height {first - 1} not checked" in words
        assert "transaction kind:" in words or "record key:" in words
        _render_first_page(pdf)
    finally:
        pdf.close()


def _render_first_page(pdf: pdfium.PdfDocument) -> None:
    """Page 1 as PDFium draws it, for the note; the red verdict must be on it."""
    image = pdf[0].render(scale=1.5).to_pil().convert("RGB")
    PAGE_PNG.parent.mkdir(exist_ok=True)
    image.save(PAGE_PNG)
    width, height = image.size
    assert width > 800 and height > 1000
    raw = image.tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    red = sum(1 for r, g, b in pixels if r > 110 and g < 40 and b < 40)
    dark = sum(1 for r, g, b in pixels if r < 80 and g < 80 and b < 80)
    assert red > 200, "the verdict in red"
    assert dark > 5_000, "text on the page"


def test_hostile_chain_strings_print_as_text(tmp_path: Path) -> None:
    hostile = '<font size="40">big</font><b>&amp;</b>'
    finding = Finding(3, hostile, hostile, tx_index=0, tx_hash=b"\x01", tx_kind=hostile)
    report = AuditReport(hostile, 3, findings=[finding])
    ctx = AuditContext(hostile, b"\x00", None, datetime.now(UTC), offline=False, where=hostile)
    out = tmp_path / "hostile.pdf"
    out.write_bytes(render_pdf(report, ctx))
    pdf = pdfium.PdfDocument(str(out))
    try:
        text = "".join(pdf[0].get_textpage().get_text_range().split())
    finally:
        pdf.close()
    assert text.count('<fontsize="40">big</font><b>&amp;</b>') >= 4, text

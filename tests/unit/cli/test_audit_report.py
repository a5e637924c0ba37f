"""``audit verify --report FILE``: the auditor's report (HTML or JSON) and the source label."""

from __future__ import annotations

import json
import re
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from cli.audit_report import AuditContext, render_html
from ledger.block import Block
from ledger.state_prune import prune_step
from ledger.storage import WriteBatch, open_leveldb
from ledger.storage import keys as rows
from node.audit import AuditReport, Finding
from tests.unit.cli.kit import CliNode, ServerThread, message, run
from tests.unit.cli.test_audit import leveldb_home

HOSTILE = '<script>alert("x")</script>'


def _tip_hash(node: CliNode) -> str:
    tip = node.chain.head().height
    return Block.decode(node.store.get(rows.block_key(tip)) or b"").hash.hex()


def _tamper(home: Path, copy: Path, key: bytes, value: bytes | None = None) -> None:
    """A copy of ``home`` whose row ``key`` has its last byte flipped (or is ``value``)."""
    shutil.copytree(home, copy)
    store = open_leveldb(str(copy / "data"))
    if value is None:
        flipped = bytearray(store.get(key) or b"")
        flipped[-1] ^= 0x01
        value = bytes(flipped)
    batch = WriteBatch()
    batch.put(key, value)
    store.write(batch)
    store.close()


def _audit_tampered(
    node: CliNode, tmp_path: Path, key: bytes, report: str, value: bytes | None = None
) -> tuple[int, str, Path]:
    """Audit a copy of the node's store with row ``key`` tampered: (exit code, output, copy)."""
    home = leveldb_home(node, tmp_path)
    copy = tmp_path / "copy"
    _tamper(home, copy, key, value)
    code, printed = _audit(copy, home / "genesis.json", tmp_path / report)
    return code, printed, copy


def _audit(home: Path, genesis: Path, report: Path, *extra: str) -> tuple[int, str]:
    args = ["audit", "verify", "--home", str(home), "--genesis", str(genesis)]
    result = run([*args, "--workers", "0", "--report", str(report), *extra])
    assert result.exit_code in (0, 1), message(result)
    return result.exit_code, result.output


def test_clean_chain_report(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)
    genesis = home / "genesis.json"
    out = tmp_path / "audit.html"
    code, printed = _audit(home, genesis, out)
    assert code == 0
    assert f"offline (the store of {home})" in printed, "the summary says offline"
    page = out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert "The chain checks out." in page and "FOUND PROBLEMS" not in page
    assert node.genesis.hash.hex() in page and str(genesis) in page
    assert _tip_hash(node) in page
    assert f"offline: the store of {home}, read from a private copy" in page
    assert "every transaction signature" in page and "compared byte for byte" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "<h2>Findings</h2>\n<p>None.</p>" in page


def test_tampered_chain_report_names_the_finding(node: CliNode, tmp_path: Path) -> None:
    code, printed, copy = _audit_tampered(node, tmp_path, rows.receipt_key(2, 1), "audit.html")
    out = tmp_path / "audit.html"
    assert code == 1 and "audit FAILED" in printed and f"the store of {copy}" in printed
    page = out.read_text()
    assert "The audit FOUND PROBLEMS." in page
    row = re.search(r"<tr><td>2</td><td>receipt of transaction 1</td><td>(.*?)</td></tr>", page)
    assert row is not None, page
    assert "differs from the re-executed value" in row.group(1)
    assert f"record key: <code>{rows.receipt_key(2, 1).hex()}</code>" in row.group(1)
    assert "stored: <code>" in row.group(1) and "expected: <code>" in row.group(1)


def test_hostile_chain_strings_are_escaped(node: CliNode, tmp_path: Path) -> None:
    hostile_key = rows.INDEX + HOSTILE.encode()
    code, _, _ = _audit_tampered(node, tmp_path, hostile_key, "audit.html", b"shipment/S-0001")
    assert code == 1
    page = (tmp_path / "audit.html").read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    # every field a finding may carry, rendered directly
    finding = Finding(3, HOSTILE, HOSTILE, tx_index=0, tx_hash=b"\x01", tx_kind=HOSTILE)
    report = AuditReport(HOSTILE, 3, findings=[finding])
    ctx = AuditContext(HOSTILE, b"\x00", None, datetime.now(UTC), offline=False, where=HOSTILE)
    direct = render_html(report, ctx)
    assert "<script" not in direct.lower() and direct.count("&lt;script&gt;") >= 6
    assert "transaction kind: <code>&lt;script&gt;" in direct


def test_json_report_and_json_output(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)
    genesis = home / "genesis.json"
    out = tmp_path / "audit.json"
    code, printed = _audit(home, genesis, out, "--json")
    assert code == 0
    written, shown = json.loads(out.read_text()), json.loads(printed)
    for doc in (written, shown):
        assert doc["ok"] and doc["genesis_hash"] == node.genesis.hash.hex()
        assert doc["tip"] == node.chain.head().height and doc["tip_hash"] == _tip_hash(node)
        assert doc["source"] == {"kind": "offline", "where": str(home)}
        assert doc["genesis_file"] == str(genesis)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["started_at"])
        assert doc["checked"] and doc["not_checked"] == [] and doc["findings"] == []


def test_json_report_of_a_tampered_chain(node: CliNode, tmp_path: Path) -> None:
    code, _, _ = _audit_tampered(node, tmp_path, rows.receipt_key(2, 1), "audit.json")
    assert code == 1
    finding = json.loads((tmp_path / "audit.json").read_text())["findings"][0]
    assert finding["height"] == 2 and finding["record"] == "receipt of transaction 1"
    assert finding["key"] == rows.receipt_key(2, 1).hex()
    assert finding["stored"] != finding["expected"]


def test_a_bad_block_says_what_could_not_be_checked(node: CliNode, tmp_path: Path) -> None:
    code, _, _ = _audit_tampered(node, tmp_path, rows.block_key(3), "audit.json")
    assert code == 1
    doc = json.loads((tmp_path / "audit.json").read_text())
    tip = node.chain.head().height
    assert doc["heights"] == 2 and doc["linked"] == tip
    assert doc["not_checked"][0].startswith(
        "state after height 2 not checked: the replay stops at block 3"
    )
    assert f"blocks 4 to {tip} were checked for hash links, certificates" in doc["not_checked"][0]
    assert any(g.startswith("stored rows: only the blocks") for g in doc["not_checked"])


def test_online_report_says_online(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    online = ["audit", "verify", "--node", server.url, "--genesis", genesis_file]
    out = tmp_path / "online.html"
    result = run([*online, "--key", keys["auditor"], "--report", str(out)])
    assert result.exit_code == 0, message(result)
    assert f"online ({server.url})" in result.output and "offline" not in result.output
    page = out.read_text()
    assert f"online: {server.url}, as the node serves it" in page
    assert "compared byte for byte" not in page, "an online audit compares no stored row"
    shown = json.loads(run([*online, "--key", keys["auditor"], "--json"]).stdout)
    assert shown["source"] == {"kind": "online", "where": server.url}
    assert shown["tip_hash"] == _tip_hash(node)


def test_a_pruned_store_passes_and_says_what_was_not_compared(
    node: CliNode, tmp_path: Path
) -> None:
    """Pruning switched on over this copy (its window starts 2 below the tip): the audit
    passes and says, on the terminal and in the report, from which height state was
    compared."""
    home = leveldb_home(node, tmp_path)
    store = open_leveldb(str(home / "data"))
    head = node.chain.head()
    prune_step(store, head.height, 3)
    store.close()
    code, printed = _audit(home, home / "genesis.json", tmp_path / "audit.json")
    assert code == 0, printed
    said = " ".join(printed.split())
    assert f"not checked: the state of heights below {head.height - 2}: this node prunes" in said
    doc = json.loads((tmp_path / "audit.json").read_text())
    assert doc["oldest_state_height"] == head.height - 2
    assert "keeps it from height" in doc["not_checked"][0]

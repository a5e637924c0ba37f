"""The audit engine (node/audit.py) and ``audit verify``: a clean chain passes; a flipped
byte in any kind of stored record is found and named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.block import Block
from ledger.storage import MemoryStore, WriteBatch, keys, open_leveldb
from node.audit import AuditReport, ChainAuditor, StoreSource
from tests.unit.cli.kit import CliNode, ServerThread, build_journey, lying_proxy, message, run


def copy_store(source: MemoryStore) -> MemoryStore:
    out = MemoryStore()
    batch = WriteBatch()
    for k, v in source.iterate(b""):
        batch.put(k, v)
    out.write(batch)
    return out


def audit(node: CliNode, store: MemoryStore, workers: int = 0) -> AuditReport:
    return ChainAuditor(node.genesis, workers=workers).run(StoreSource(store), compare_with=store)


def flip(store: MemoryStore, key: bytes, at: int = -1) -> None:
    value = bytearray(store.get(key) or b"")
    value[at] ^= 0x01
    batch = WriteBatch()
    batch.put(key, bytes(value))
    store.write(batch)


def first_key(store: MemoryStore, prefix: bytes) -> bytes:
    return next(k for k, _ in store.iterate(prefix))


def test_clean_chain_passes(node: CliNode) -> None:
    report = audit(node, node.store, workers=1)  # type: ignore[arg-type]
    assert report.ok, report.findings
    assert report.heights == node.chain.head().height and report.txs > 10
    assert report.rows_compared == len(node.store) - 0  # nothing node-local in this store


def _tampered(node: CliNode, change: Callable[[MemoryStore], None]) -> AuditReport:
    store = copy_store(node.store)  # type: ignore[arg-type]
    change(store)
    report = audit(node, store)
    assert not report.ok
    return report


def _block_change(height: int, edit: Callable[[dict], None]) -> Callable[[MemoryStore], None]:  # type: ignore[type-arg]
    def change(store: MemoryStore) -> None:
        block = Block.decode(store.get(keys.block_key(height)) or b"").to_obj()
        edit(block)
        batch = WriteBatch()
        from ledger.encoding import encode

        batch.put(keys.block_key(height), encode(block))
        store.write(batch)

    return change


@pytest.mark.parametrize(
    ("what", "change", "height", "record"),
    [
        ("block bytes", lambda s: flip(s, keys.block_key(3), 40), 3, "block"),
        (
            "tx payload",
            _block_change(2, lambda b: b["txs"][0]["payload"].update(to="globex")),
            2,
            "block header",
        ),
        (
            "tx signature",
            _block_change(4, lambda b: b["txs"][0].update(signature=bytes(64))),
            4,
            "transaction 0",
        ),
        (
            "carried certificate",
            _block_change(5, lambda b: b["last_cert"]["signatures"][0].__setitem__(1, bytes(64))),
            5,
            "block",
        ),
        ("stored certificate", lambda s: flip(s, keys.cert_key(2)), 2, "stored certificate"),
        ("receipt", lambda s: flip(s, keys.receipt_key(3, 0), 20), 3, "receipt of transaction 0"),
        ("tx index", lambda s: flip(s, first_key(s, keys.TX_INDEX)), None, "tx index entry"),
        (
            "block hash index",
            lambda s: flip(s, first_key(s, keys.BLOCK_HASH)),
            None,
            "block-hash index",
        ),
        ("state node", lambda s: flip(s, first_key(s, keys.STATE_NODE), 10), None, "state node"),
        ("state value", lambda s: flip(s, first_key(s, keys.STATE_LEAF)), None, "state value of"),
        ("log node", lambda s: flip(s, first_key(s, keys.LOG), 5), 1, "log node (level 0"),
        ("contract index", lambda s: flip(s, first_key(s, keys.INDEX)), None, "contract index"),
        ("head record", lambda s: flip(s, keys.HEAD), None, "meta record 'head'"),
    ],
)
def test_flipped_byte_is_found(
    node: CliNode,
    what: str,
    change: Callable[[MemoryStore], None],
    height: int | None,
    record: str,
) -> None:
    report = _tampered(node, change)
    finding = report.findings[0]
    assert record in finding.record, (what, report.findings)
    if height is not None:
        assert finding.height == height, (what, report.findings)


def test_tip_certificate_checked(node: CliNode) -> None:
    tip = node.chain.head().height
    report = _tampered(node, lambda s: flip(s, keys.cert_key(tip)))
    assert report.findings[0].height == tip
    assert "certificate" in report.findings[0].record


def test_missing_and_extra_rows(node: CliNode) -> None:
    def drop_block(s: MemoryStore) -> None:
        batch = WriteBatch()
        batch.delete(keys.block_key(4))
        s.write(batch)

    assert "missing" in _tampered(node, drop_block).findings[0].problem

    def extra(s: MemoryStore) -> None:
        batch = WriteBatch()
        batch.put(keys.INDEX + b"shipment-status/seized/S-0001", b"shipment/S-0001")
        s.write(batch)

    found = _tampered(node, extra).findings[0]
    assert "never wrote" in found.problem and "seized" in found.record


def test_node_local_rows_are_not_compared(node: CliNode) -> None:
    store = copy_store(node.store)  # type: ignore[arg-type]
    batch = WriteBatch()
    batch.put(keys.SIGNER + b"last", b"anything")
    store.write(batch)
    assert audit(node, store).ok


def leveldb_home(node: CliNode, path: Path) -> Path:
    home = path / "node"
    (home / "data").mkdir(parents=True)
    (home / "genesis.json").write_text(node.genesis.to_json())
    store = open_leveldb(str(home / "data"))
    batch = WriteBatch()
    for k, v in node.store.iterate(b""):
        batch.put(k, v)
    store.write(batch)
    store.close()
    return home


def test_cli_audit_home(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)
    result = run(["audit", "verify", "--home", str(home), "--json", "--workers", "0"])
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["rows_compared"] > 100
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    store = open_leveldb(str(copy / "data"))
    value = bytearray(store.get(keys.receipt_key(2, 1)) or b"")
    value[-1] ^= 0x01
    batch = WriteBatch()
    batch.put(keys.receipt_key(2, 1), bytes(value))
    store.write(batch)
    store.close()
    bad = run(["audit", "verify", "--home", str(copy), "--genesis", str(home / "genesis.json")])
    assert bad.exit_code == 1
    assert "audit FAILED" in bad.output and "receipt of transaction 1" in bad.output


def test_cli_audit_online(server: ServerThread, node: CliNode, genesis_file: str) -> None:
    server.call(lambda: build_journey(node, "S-0002"))
    result = run(["audit", "verify", "--node", server.url, "--genesis", genesis_file])
    assert result.exit_code == 0, message(result)
    assert "the chain checks out" in result.output

    def forge(path: str, answer: dict) -> dict:  # type: ignore[type-arg]
        if path == "/v1/blocks/3":
            answer["block"]["header"]["state_root"] = bytes(32)
        return answer

    proxy = lying_proxy(server.url, forge)
    try:
        bad = run(["audit", "verify", "--node", proxy.url, "--genesis", genesis_file, "--json"])
    finally:
        proxy.stop()
    assert bad.exit_code == 1
    finding = json.loads(bad.stdout)["findings"][0]
    assert finding["height"] in (3, 4), finding


def test_bad_signature_found_by_the_pool(node: CliNode) -> None:
    store = copy_store(node.store)  # type: ignore[arg-type]
    _block_change(3, lambda b: b["txs"][0].update(signature=bytes(64)))(store)
    report = audit(node, store, workers=1)
    assert [(f.height, f.problem) for f in report.findings] == [(3, "bad signature")]

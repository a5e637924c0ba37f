"""The audit engine (node/audit.py) and ``audit verify``: a clean chain passes; a flipped
byte in any kind of stored record is found and named."""

from __future__ import annotations

import gc
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cli import audit_store
from ledger.storage import MemoryStore, WriteBatch, keys, open_leveldb, reopening
from node.audit import AuditReport, ChainAuditor, StoreSource
from node.audit_segments import ParallelAudit, SegmentResult, _rows_match
from node.collector import YOUNG_THRESHOLD
from tests.unit.chain_kit import copy_store
from tests.unit.cli.kit import (
    CliNode,
    ServerThread,
    build_journey,
    lying_proxy,
    message,
    rewrite_block,
    run,
)


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


def test_clean_chain_passes_in_parallel_segments(node: CliNode) -> None:
    sequential = audit(node, node.store, workers=1)  # type: ignore[arg-type]
    report = audit(node, node.store, workers=2)  # type: ignore[arg-type]
    assert report.ok, report.findings
    assert report.segments >= 2, "the offline audit ran in segments"
    assert (report.heights, report.txs, report.rows_compared) == (
        sequential.heights,
        sequential.txs,
        sequential.rows_compared,
    )
    assert sequential.segments == 0


def test_parallel_progress_counts_every_block(node: CliNode) -> None:
    seen: list[tuple[int, int, int]] = []
    auditor = ChainAuditor(node.genesis, workers=2, progress=lambda *a: seen.append(a))
    report = auditor.run(StoreSource(node.store), compare_with=node.store)  # type: ignore[arg-type]
    assert report.ok and report.segments >= 2
    assert seen[-1] == (report.tip, report.tip, report.txs)


def test_the_collector_is_set_as_a_node_sets_it_while_the_audit_runs(node: CliNode) -> None:
    """The audit re-executes what the nodes executed: with the interpreter's defaults the
    collector walked each block's live objects hundreds of times (node/collector.py)."""
    before = gc.get_threshold()
    during: list[int] = []
    auditor = ChainAuditor(
        node.genesis, workers=0, progress=lambda *_: during.append(gc.get_threshold()[0])
    )
    report = auditor.run(StoreSource(node.store), compare_with=node.store)  # type: ignore[arg-type]
    assert report.ok and during and set(during) == {YOUNG_THRESHOLD}
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0  # given back


def _segment(first: int, end: int, base: bytes, last: bytes, txs: bytes) -> SegmentResult:
    return SegmentResult(
        first, end, base_hash=base, last_hash=last, end_cert_hash=b"c", tx_hashes=txs
    )


def test_segments_must_join_and_never_repeat_a_transaction(node: CliNode) -> None:
    """The main process's checks over the segments' results (ParallelAudit)."""
    g = node.genesis.hash
    join = ParallelAudit(node.genesis, 2, None)._join

    def results(second_base: bytes, second_txs: bytes) -> list[SegmentResult]:
        a = _segment(1, 3, g, b"h2", b"A" * 32)
        b = _segment(3, 5, second_base, b"h4", second_txs)
        b.first_cert_hash = b"c"
        return [a, b]

    assert join(results(b"h2", b"B" * 32), 4) is not None
    assert join(results(b"h2", b"B" * 32), 5) is None, "short of the tip"
    assert join(results(b"hX", b"B" * 32), 4) is None, "does not start where 1 ended"
    assert join(results(b"h2", b"A" * 32), 4) is None, "a transaction repeats"
    failed = results(b"h2", b"B" * 32)
    failed[1].failure = "anything"
    assert join(failed, 4) is None


def test_segment_rows_must_be_the_stored_rows_with_the_last_write_winning() -> None:
    """_rows_match: rows marked equal in the workers plus those that differ."""
    position = {b"a": 0, b"b": 1, b"c": 2}  # the stored rows, numbered

    def match(marks: tuple[str, ...], *differing: dict[bytes, bytes | None]) -> bool:
        results = [SegmentResult(1, 2, number) for number in range(len(marks))]
        for result, rows in zip(results, differing, strict=False):
            result.differing = rows
        flat = b"".join(bytes(int(c) for c in m) for m in marks)
        return _rows_match(results, len(position), position, flat)

    assert match(("110", "001"))
    assert match(("111", "000"))
    assert not match(("110", "000")), "a stored row nobody wrote"
    assert match(("110", "001"), {b"c": b"old"}), "overwritten later with the stored value"
    assert not match(("111", "000"), {}, {b"c": b"new"}), "its last write differs"
    assert not match(("111", "000"), {}, {b"c": None}), "deleted at the end, but stored"
    assert match(("111", "000"), {b"x": b"1"}, {b"x": None}), "written, then deleted"
    assert not match(("111", "000"), {b"x": None}, {b"x": b"1"}), "a row the store lacks"
    assert match(("110", "000", "001"), {b"c": b"1"}, {b"c": b"2"})


def _tampered(
    node: CliNode, change: Callable[[MemoryStore], None], workers: int = 0
) -> AuditReport:
    store = copy_store(node.store)  # type: ignore[arg-type]
    change(store)
    report = audit(node, store, workers)
    assert not report.ok
    assert report.segments == 0, "findings come from the sequential replay"
    return report


@pytest.mark.parametrize(
    ("what", "change", "height", "record"),
    [
        ("block bytes", lambda s: flip(s, keys.block_key(3), 40), 3, "block"),
        (
            "tx payload",
            rewrite_block(2, lambda b: b["txs"][0]["payload"].update(to="globex")),
            2,
            "block header",
        ),
        (
            "tx signature",
            rewrite_block(4, lambda b: b["txs"][0].update(signature=bytes(64))),
            4,
            "transaction 0",
        ),
        (
            "carried certificate",
            rewrite_block(5, lambda b: b["last_cert"]["signatures"][0].__setitem__(1, bytes(64))),
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
@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "segments"])
def test_flipped_byte_is_found(
    node: CliNode,
    what: str,
    change: Callable[[MemoryStore], None],
    height: int | None,
    record: str,
    workers: int,
) -> None:
    report = _tampered(node, change, workers)
    finding = report.findings[0]
    assert record in finding.record, (what, report.findings)
    if height is not None:
        assert finding.height == height, (what, report.findings)


@pytest.mark.parametrize("workers", [0, 2])
def test_tip_certificate_checked(node: CliNode, workers: int) -> None:
    tip = node.chain.head().height
    report = _tampered(node, lambda s: flip(s, keys.cert_key(tip)), workers)
    assert report.findings[0].height == tip
    assert "certificate" in report.findings[0].record


@pytest.mark.parametrize("workers", [0, 2])
def test_missing_and_extra_rows(node: CliNode, workers: int) -> None:
    def drop_block(s: MemoryStore) -> None:
        batch = WriteBatch()
        batch.delete(keys.block_key(4))
        s.write(batch)

    assert "missing" in _tampered(node, drop_block, workers).findings[0].problem

    def extra(s: MemoryStore) -> None:
        batch = WriteBatch()
        batch.put(keys.INDEX + b"shipment-status/seized/S-0001", b"shipment/S-0001")
        s.write(batch)

    found = _tampered(node, extra, workers).findings[0]
    assert "never wrote" in found.problem and "seized" in found.record


def test_node_local_rows_are_not_compared(node: CliNode) -> None:
    store = copy_store(node.store)  # type: ignore[arg-type]
    batch = WriteBatch()
    batch.put(keys.SIGNER + b"last", b"anything")
    store.write(batch)
    assert audit(node, store).ok
    assert audit(node, store, workers=2).segments >= 2


def leveldb_home(node: CliNode, path: Path) -> Path:
    home = path / "node"
    (home / "data").mkdir(parents=True)
    (home / "genesis.json").write_text(node.genesis.to_json())
    store = open_leveldb(str(home / "data"), create=True)
    batch = WriteBatch()
    for k, v in node.store.iterate(b""):
        batch.put(k, v)
    store.write(batch)
    store.close()
    return home


def flip_receipt(home: Path) -> None:
    """One bit of the stored receipt of block 2's transaction 1 flipped."""
    store = open_leveldb(str(home / "data"))
    value = bytearray(store.get(keys.receipt_key(2, 1)) or b"")
    value[-1] ^= 0x01
    batch = WriteBatch()
    batch.put(keys.receipt_key(2, 1), bytes(value))
    store.write(batch)
    store.close()


def test_cli_audit_home(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)
    result = run(["audit", "verify", "--home", str(home), "--json", "--workers", "0"])
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["rows_compared"] > 100 and doc["segments"] == 0
    result = run(["audit", "verify", "--home", str(home), "--json", "--workers", "2"])
    assert result.exit_code == 0, message(result)
    parallel = json.loads(result.stdout)
    assert parallel["ok"] and parallel["segments"] >= 2
    assert parallel["rows_compared"] == doc["rows_compared"] and parallel["txs"] == doc["txs"]
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    flip_receipt(copy)
    bad = run(["audit", "verify", "--home", str(copy), "--genesis", str(home / "genesis.json")])
    assert bad.exit_code == 1
    assert "audit FAILED" in bad.output and "receipt of transaction 1" in bad.output


def test_cli_streaming_audit_reopens_the_store_and_still_sees_every_row(
    node: CliNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reopened every few kB (so that its mapped tables are let go), the streamed audit
    compares every row the in-memory one does, and still finds a changed one."""
    home = leveldb_home(node, tmp_path)
    whole = run(["audit", "verify", "--home", str(home), "--json", "--workers", "0"])
    assert whole.exit_code == 0, message(whole)
    reopened: list[int] = []
    real_reopen = reopening.ReopeningStore._reopen

    def counting(self: reopening.ReopeningStore) -> None:
        real_reopen(self)
        reopened.append(self.reopened)

    monkeypatch.setattr(reopening, "DEFAULT_BUDGET_BYTES", 8_192)
    monkeypatch.setattr(reopening.ReopeningStore, "_reopen", counting)
    one = ["--workers", "1"]  # the replay reads every table itself (none beside it)
    streamed = run(["audit", "verify", "--home", str(home), "--json", "--streaming", *one])
    assert streamed.exit_code == 0, message(streamed)
    doc = json.loads(streamed.stdout)
    assert doc["ok"] and doc["rows_compared"] == json.loads(whole.stdout)["rows_compared"]
    assert len(reopened) >= 10
    flip_receipt(home)
    bad = run(["audit", "verify", "--home", str(home), "--streaming"])
    assert bad.exit_code == 1
    assert "audit FAILED" in bad.output and "receipt of transaction 1" in bad.output


def test_cli_audit_home_warns_when_memory_may_not_hold_the_store(
    node: CliNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = leveldb_home(node, tmp_path)
    assert audit_store.available_memory() is not None, "this is Linux: /proc/meminfo exists"
    quiet = run(["audit", "verify", "--home", str(home), "--workers", "2"])
    assert quiet.exit_code == 0 and "warning" not in quiet.output, message(quiet)
    monkeypatch.setattr(audit_store, "available_memory", lambda: 1024)
    streamed = run(["audit", "verify", "--home", str(home), "--workers", "2", "--json"])
    assert streamed.exit_code == 0 and json.loads(streamed.stdout)["segments"] == 0, "streamed"
    assert "warning" not in streamed.output
    forced = ["audit", "verify", "--home", str(home), "--workers", "2", "--in-memory"]
    warned = run(forced)
    assert warned.exit_code == 0, message(warned)
    assert "this audit keeps the store's rows in memory" in warned.output
    assert "0.0 GiB is available" in warned.output
    assert "the chain checks out" in warned.output, "a warning, the audit still runs"


def test_cli_audit_online(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    server.call(lambda: build_journey(node, "S-0002"))
    online = ["audit", "verify", "--node", server.url, "--genesis", genesis_file]
    result = run([*online, "--key", keys["auditor"]])
    assert result.exit_code == 0, message(result)
    assert "the chain checks out" in result.output
    # without an auditor's key the node redacts shipment transactions: a clear refusal
    refused = run(online)
    assert refused.exit_code != 0
    assert "give --key with an auditor's member key" in str(refused.exception)

    def forge(path: str, answer: dict) -> dict:  # type: ignore[type-arg]
        if path == "/v1/blocks/3":
            answer["block"]["header"]["state_root"] = bytes(32)
        return answer

    proxy = lying_proxy(server.url, forge)
    try:
        bad = run(
            [
                *("audit", "verify", "--node", proxy.url, "--genesis", genesis_file),
                *("--json", "--key", keys["auditor"]),
            ]
        )
    finally:
        proxy.stop()
    assert bad.exit_code == 1
    finding = json.loads(bad.stdout)["findings"][0]
    assert finding["height"] in (3, 4), finding


def test_bad_signature_found_by_the_pool(node: CliNode) -> None:
    store = copy_store(node.store)  # type: ignore[arg-type]
    rewrite_block(3, lambda b: b["txs"][0].update(signature=bytes(64)))(store)
    report = audit(node, store, workers=1)
    assert [(f.height, f.problem) for f in report.findings] == [(3, "bad signature")]


def test_cli_audit_home_changes_no_file_of_the_audited_store(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)  # closed with its last writes only in the log
    data = home / "data"
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    result = run(["audit", "verify", "--home", str(home), "--json", "--workers", "2"])
    assert result.exit_code == 0, message(result)
    assert json.loads(result.stdout)["ok"]
    after = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    assert after == before


def _several_tamperings(store: MemoryStore) -> None:
    """A receipt at height 2, a forged signature at 4, block 6's header, a signature at 9."""
    flip(store, keys.receipt_key(2, 1), 20)
    rewrite_block(4, lambda b: b["txs"][0].update(signature=bytes(64)))(store)
    rewrite_block(6, lambda b: b["header"].update(time_ms=b["header"]["time_ms"] + 1))(store)
    rewrite_block(9, lambda b: b["txs"][0].update(signature=bytes(64)))(store)


@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "segments"])
def test_the_audit_goes_on_after_a_bad_block(node: CliNode, workers: int) -> None:
    report = _tampered(node, _several_tamperings, workers)
    tip = node.chain.head().height
    named = [(f.height, f.record.split(" (")[0], f.problem) for f in report.findings]

    def found(height: int, record: str, problem: str) -> bool:
        return any(h == height and r == record and problem in p for h, r, p in named)

    assert found(2, "receipt of transaction 1", "differs from the re-executed value"), named
    assert found(4, "transaction 0", "bad signature"), named
    assert found(6, "certificate 6", ""), named
    assert found(7, "block header", "prev_hash does not link to the previous block"), named
    assert found(9, "transaction 0", "bad signature"), named
    assert [f.height for f in report.findings] == sorted(f.height or 0 for f in report.findings)
    assert report.heights == 3, "nothing is re-executed from the first bad block on"
    assert report.linked == tip, "links and certificates are checked to the tip"
    assert report.not_checked[0].startswith("state after height 3 not checked")
    assert report.not_checked[-1].startswith("stored rows: only the blocks, certificates and")
    assert "heights 1 to 3" in report.not_checked[-1]


def test_a_missing_block_breaks_one_link_and_the_audit_goes_on(node: CliNode) -> None:
    def drop_and_forge(s: MemoryStore) -> None:
        batch = WriteBatch()
        batch.delete(keys.block_key(5))
        s.write(batch)
        rewrite_block(8, lambda b: b["txs"][0].update(signature=bytes(64)))(s)

    report = _tampered(node, drop_and_forge)
    assert [(f.height, f.record) for f in report.findings][:1] == [(5, "block")]
    assert any(f.height == 8 and f.problem == "bad signature" for f in report.findings)
    gaps = " | ".join(report.not_checked)
    assert "the link from block 5 to block 6: block 5 is missing" in gaps
    assert "the certificate of block 5: the block is missing" in gaps


STREAMED_CHANGES = [
    lambda s: flip(s, keys.receipt_key(3, 0), 20),
    lambda s: flip(s, first_key(s, keys.STATE_NODE), 10),
    lambda s: flip(s, first_key(s, keys.STATE_LEAF)),
    lambda s: flip(s, first_key(s, keys.INDEX)),
    lambda s: flip(s, first_key(s, keys.LOG), 5),
    lambda s: flip(s, keys.HEAD),
    _several_tamperings,
]


@pytest.mark.parametrize("change", STREAMED_CHANGES)
def test_streaming_audit_finds_what_the_in_memory_one_finds(
    node: CliNode, change: Callable[[MemoryStore], None], tmp_path: Path
) -> None:
    store = copy_store(node.store)  # type: ignore[arg-type]
    change(store)
    in_memory = ChainAuditor(node.genesis, workers=0).run(StoreSource(store), compare_with=store)
    streamed = ChainAuditor(node.genesis, workers=0, scratch_dir=str(tmp_path / "s")).run(
        StoreSource(store), compare_with=store
    )
    assert not in_memory.ok
    assert streamed.findings == in_memory.findings
    assert streamed.not_checked == in_memory.not_checked
    assert streamed.rows_compared == in_memory.rows_compared


def test_streaming_audit_passes_a_clean_chain(node: CliNode, tmp_path: Path) -> None:
    auditor = ChainAuditor(node.genesis, workers=1, scratch_dir=str(tmp_path / "s"))
    report = auditor.run(StoreSource(node.store), compare_with=node.store)  # type: ignore[arg-type]
    assert report.ok and report.segments == 0, report.findings
    assert report.rows_compared == len(node.store)  # type: ignore[arg-type]

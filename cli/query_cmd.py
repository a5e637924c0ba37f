"""``cityledger status``, ``cityledger block HEIGHT`` and ``cityledger tx show HASH``.

``status`` is informational (what the node says about itself). ``block`` and
``tx show`` check what they print when given the genesis file: the block's
certificate, its transactions against the header's tx root; the receipt's
certificate and its inclusion in the block's tx and results roots and in the
ledger's append-only log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from cli.client import NodeClient, NodeError, genesis_option, node_option
from cli.keys_cmd import key_option, load_key
from cli.output import console, err_console, fail, print_json
from cli.render import fmt_time, kv, receipt_view, short
from cli.tabular import Column, Listing, format_option
from cli.tx_view import TxDetails, tx_details
from cli.verified_reads import FINAL, Reads, freshness_json, freshness_text, max_age_option
from ledger.block import BlockHeader, Receipt
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.answers import Verified
from lightclient.blocks import BlockEntry, BlockView, read_block, verify_block
from lightclient.headers import CertifiedHeader
from lightclient.receipts import VerifiedReceipt, verify_receipt


def _client(node: str, key_path: str | None = None) -> NodeClient:
    return NodeClient(node, key=load_key(key_path) if key_path else None)


@click.command()
@node_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(node: str, as_json: bool) -> None:
    """What the node says about itself: chain, height, peers, mempool (not verified)."""
    answer = _client(node).get("/v1/status")
    if as_json:
        print_json(answer)
        return
    rows = []
    for name, value in answer.items():
        if name.endswith("time_ms") and isinstance(value, int):
            rows.append((name, f"{fmt_time(value)} ({value})"))
        else:
            rows.append((name, _plain(value)))
    console.print(kv(rows))


def _plain(value: Value) -> str:
    """A nested answer value on one line: bytes as short hex, maps as k=v."""
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 32 else short(value, 16)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v if k != 'key' else v[:8])}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value) or "-"
    return "-" if value is None else str(value)


@click.command()
@click.argument("height")
@node_option()
@genesis_option(required=False)
@key_option(help_text="Member key that signs the read (shows the transactions it may see).")
@max_age_option()
@format_option()
def block(
    height: str,
    node: str,
    genesis_path: str | None,
    key_path: str | None,
    max_age_s: float,
    fmt: str,
) -> None:
    """One block (HEIGHT or 'latest'): header, transactions, certificate.

    'latest' must be no older than --max-age; a numbered block is any age (asked for).
    ``--format csv`` lists its transactions (the header and what was verified: stderr).
    """
    if height != "latest" and not height.isdigit():
        fail("HEIGHT is a number or 'latest'")
    client = _client(node, key_path)
    answer = client.get(f"/v1/blocks/{height}")
    view = read_block(answer)
    verified = None
    if genesis_path is not None:
        reads = Reads(client, Genesis.load(genesis_path), max_age_s)
        freshness = reads.current() if height == "latest" else reads.at_height(int(height))
        verified = reads.accept(lambda: verify_block(view, reads.genesis), freshness)
    if fmt == "json":
        print_json(
            {
                "height": view.header.height,
                "hash": view.header.hash,
                "block": answer["block"],
                "redacted": view.redacted,
                "certificate": view.cert.to_obj(),
                "verified": False,
            }
            | ({} if verified is None else freshness_json(verified))
        )
        return
    _print_block(view, verified, fmt == "csv")


def _print_block(view: BlockView, verified: Verified[CertifiedHeader] | None, as_csv: bool) -> None:
    """The header, the transactions this reader may see, and what was verified
    (with ``as_csv``, the transactions as CSV rows and the rest on stderr)."""
    notes = err_console if as_csv else console
    notes.print(kv(_header_rows(view)))
    entries = list(enumerate(view.entries))
    if as_csv:
        BLOCK_TXS.write_csv(entries)
    elif view.entries:
        console.print(BLOCK_TXS.table(entries))
        console.print("each transaction: cityledger tx show HASH")
    if view.redacted:
        notes.print(
            f"{view.redacted} payloads are not shown to this reader (read rules); "
            "give --key to read what your organisation may"
        )
    if verified is not None:
        notes.print(freshness_text(verified))
        notes.print("  transactions and evidence match the header's tx and evidence roots")
    else:
        notes.print("[yellow]not verified[/]: give --genesis to check the certificate")


def _header_rows(view: BlockView) -> list[tuple[str, str]]:
    h, cert = view.header, view.cert
    return [
        ("block", f"[bold]{h.height}[/] {h.hash.hex()}"),
        ("time", fmt_time(h.time_ms)),
        ("previous", h.prev_hash.hex()),
        ("proposer", h.proposer.hex()),
        ("transactions", f"{h.tx_count} (log size {h.log_size})"),
        ("tx root", h.tx_root.hex()),
        ("log root", h.log_root.hex()),
        ("state root", h.state_root.hex()),
        ("results root", h.results_root.hex()),
        ("evidence", f"{len(view.evidence)} pieces (root {h.evidence_root.hex()})"),
        ("certificate", f"round {cert.round}, {len(cert.signatures)} signatures"),
    ]


Entry = tuple[int, BlockEntry]
BLOCK_TXS: Listing[Entry] = Listing(
    [
        Column("index", "#", lambda e: str(e[0]), right=True),
        Column("hash", "hash", lambda e: e[1].hash.hex(), min_width=64),
        Column("kind", "kind", lambda e: e[1].kind),
        Column("redacted", "", lambda e: "true" if e[1].tx is None else "false", only="csv"),
        Column("sender", "", lambda e: _sender(e[1]), only="csv"),
        Column("nonce", "", lambda e: "" if e[1].tx is None else str(e[1].tx.nonce), only="csv"),
        Column("", "nonce", lambda e: _nonce_or_redacted(e[1]), only="table"),
    ]
)


def _nonce_or_redacted(entry: BlockEntry) -> str:
    return "redacted" if entry.tx is None else str(entry.tx.nonce)


def _sender(entry: BlockEntry) -> str:
    return "" if entry.tx is None else entry.tx.sender.hex()


@click.command("show")
@click.argument("tx_hash", metavar="HASH")
@node_option()
@genesis_option(required=False)
@key_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tx_show(
    tx_hash: str, node: str, genesis_path: str | None, key_path: str | None, as_json: bool
) -> None:
    """A transaction's receipt, with its verified inclusion in the ledger."""
    try:
        raw = bytes.fromhex(tx_hash)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        fail("HASH is the transaction's 32-byte hash in hex")
    client = _client(node, key_path)
    status_code, answer = client.get_any(f"/v1/txs/{raw.hex()}")
    if status_code == 202:
        if as_json:
            print_json({"hash": raw, "status": "pending"})
        else:
            console.print(f"{raw.hex()} is pending in the node's mempool (not committed yet)")
        return
    if status_code != 200:
        client.get(f"/v1/txs/{raw.hex()}")  # raises the node's error
    reads = None if genesis_path is None else Reads(client, Genesis.load(genesis_path))
    out: dict[str, Any] = {"hash": raw}

    def details(height: int, index: int) -> TxDetails:
        return tx_details(client, reads, height, index, raw)

    stub = answer.get("receipt")
    if isinstance(stub, dict) and stub.get("redacted") is True:
        report_withheld(stub, details, as_json, out | {"place_verified": reads is not None})
        return
    report_receipt(answer, raw, reads, as_json, out, details)


def report_withheld(
    stub: dict[str, Value],
    details: Callable[[int, int], TxDetails],
    as_json: bool,
    out: dict[str, Any],
) -> None:
    """A transaction this key may not read: where it is and its kind, nothing else."""
    height, index = stub.get("height"), stub.get("index")
    if not isinstance(height, int) or not isinstance(index, int):
        fail("the node's redacted receipt does not say where the transaction is")
    shown = details(height, index)
    if as_json:
        print_json(out | {"height": height, "index": index, "tx": shown.to_json()})
        return
    console.print(kv([("transaction", out["hash"].hex()), ("block", f"{height} (index {index})")]))
    console.print(kv(shown.rows()))
    if out["place_verified"]:
        console.print("✔ its hash is the block's entry at that index (certified block, tx root)")
    console.print(
        "the receipt and payload are shown only to readers the read rules allow: give --key "
        "with a member key of a party to it (or an auditor's)"
    )


def wait_for_receipt(client: NodeClient, tx_hash: bytes, timeout: float) -> dict[str, Value]:
    deadline = time.monotonic() + timeout
    delay, unknown = 0.05, 0
    with err_console.status(f"waiting for {tx_hash.hex()[:16]}… to be committed"):
        while time.monotonic() < deadline:
            status, answer = client.get_any(f"/v1/txs/{tx_hash.hex()}")
            if status == 200:
                return answer
            if status == 404:
                unknown += 1
                if unknown >= 20:
                    fail(f"the node no longer knows transaction {tx_hash.hex()} (dropped?)")
            elif status != 202:
                raise NodeError(f"waiting for the receipt: HTTP {status}", status=status)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
    fail(f"transaction {tx_hash.hex()} not committed within {timeout:g} s (still pending)")


def _print_receipt(
    receipt: Receipt,
    time_ms: int,
    shown: TxDetails | None,
    verified: Verified[VerifiedReceipt] | None,
) -> None:
    console.print(receipt_view(receipt, time_ms))
    if shown is not None:
        console.print(kv(shown.rows()))
    if verified is None:
        console.print(
            "[yellow]not verified[/]: give --genesis to check the certificate "
            "and the inclusion proofs"
        )
        return
    console.print(freshness_text(verified))
    console.print("  in the block's tx root, results root and the ledger log")
    if shown is not None:
        console.print(
            "  the transaction is the block's entry at that index (tx root); the "
            "sender's organisation is its member record proven at that block"
        )


def report_receipt(
    answer: dict[str, Value],
    tx_hash: bytes,
    reads: Reads | None,
    as_json: bool,
    out: dict[str, Any],
    details: Callable[[int, int], TxDetails] | None = None,
) -> None:
    """Print a receipt (verified when the genesis is known); exit 1 if the tx failed.

    A committed transaction is final: its receipt is accepted at its block's age.
    ``details``: also show the transaction (``tx show``), from its block.
    """
    stub = answer.get("receipt")
    if isinstance(stub, dict) and stub.get("redacted") is True:
        fail(
            f"the node shows transaction {tx_hash.hex()[:16]}…'s receipt only to readers the "
            "read rules allow: give --key with a member key of a party to it (or an auditor's)"
        )
    verified = None
    if reads is not None:
        genesis = reads.genesis
        verified = reads.accept(
            lambda: verify_receipt(answer, genesis, tx_hash), reads.any_age(FINAL)
        )
        receipt, header = verified.view.receipt, verified.certified.header
    else:
        receipt = Receipt.from_obj(answer["receipt"])
        header = BlockHeader.from_obj(answer["header"])
    out |= {"verified": False} if verified is None else freshness_json(verified)
    out |= {
        "status": "committed" if receipt.ok else "failed",
        "height": receipt.height,
        "receipt": receipt.to_obj(),
    }
    shown = None if details is None else details(receipt.height, receipt.index)
    if shown is not None:
        out["tx"] = shown.to_json()
    if as_json:
        print_json(out)
    else:
        _print_receipt(receipt, header.time_ms, shown, verified)
    if not receipt.ok:
        err_console.print(
            f"[bold red]error:[/] the transaction failed: {receipt.message} ({receipt.code})"
        )
        raise SystemExit(1)

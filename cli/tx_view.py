"""What ``tx show`` adds to a receipt: the transaction itself, as this reader may see it.

The transaction comes from its block (``/v1/blocks/{height}``, signed with the
reader's key so the node's read rules decide what it shows), and is accepted
only if its hash is the one asked for at the receipt's index; with the genesis
the block is verified (certificate, transactions against the tx root). A
transaction the read rules deny arrives redacted: its kind and hash only, and
the output says the payload is withheld. The sender's organisation is the
member record of its key, proven against the state root of the same block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cli.client import NodeClient
from cli.output import fail
from cli.verified_reads import FINAL, Reads
from contracts import state_keys as sk
from contracts.identity_records import Member
from ledger.encoding import Value, decode
from lightclient.blocks import BlockEntry, read_block, verify_block
from lightclient.records import verify_state_view

WITHHELD = "(withheld: the read rules do not let this key see it)"


@dataclass(frozen=True)
class TxDetails:
    """The transaction at (height, index): its entry, and its sender's organisation."""

    entry: BlockEntry
    org: str | None  # None: redacted, or the member record could not be read

    def to_json(self) -> dict[str, Any]:
        tx = self.entry.tx
        if tx is None:
            return {"kind": self.entry.kind, "redacted": True}
        return {
            "kind": tx.kind,
            "redacted": False,
            "sender": tx.sender,
            "sender_org": self.org,
            "nonce": tx.nonce,
            "payload": tx.payload,
        }

    def rows(self) -> list[tuple[str, str]]:
        tx = self.entry.tx
        if tx is None:
            return [("kind", self.entry.kind), ("sender", WITHHELD), ("payload", WITHHELD)]
        org = self.org or "organisation not shown: the member record could not be read"
        rows = [("kind", tx.kind), ("sender", f"{tx.sender.hex()} ({org})")]
        rows += [("nonce", str(tx.nonce))]
        return rows + [(f"  {k}", plain(v)) for k, v in tx.payload.items()]


def plain(value: Value) -> str:
    """A payload value on one line: bytes in hex, lists and maps flattened."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return "; ".join(plain(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


def tx_details(
    client: NodeClient, reads: Reads | None, height: int, index: int, tx_hash: bytes
) -> TxDetails:
    """The transaction ``tx_hash`` at ``index`` of block ``height``, checked as far as given."""
    view = read_block(client.get(f"/v1/blocks/{height}"))
    if reads is not None:
        reads.accept(lambda: verify_block(view, reads.genesis), reads.any_age(FINAL))
    if index >= len(view.entries) or view.entries[index].hash != tx_hash:
        fail(f"block {height} does not hold transaction {tx_hash.hex()[:16]}… at index {index}")
    entry = view.entries[index]
    if entry.tx is None:
        return TxDetails(entry, None)
    return TxDetails(entry, sender_org(client, reads, entry.tx.sender, height))


def sender_org(client: NodeClient, reads: Reads | None, sender: bytes, height: int) -> str | None:
    """The organisation of member key ``sender`` at ``height`` (proven with the genesis)."""
    key = sk.member_key(sender)
    status, answer = client.get_any(f"/v1/state/{key.hex()}", {"height": height})
    if status != 200:
        return None
    if reads is not None:
        verified = reads.accept(
            lambda: verify_state_view(answer, reads.genesis, key),
            reads.at_height(height, "the block of the transaction"),
        )
        value = verified.view.value
    else:
        raw = answer.get("value")
        value = None if not isinstance(raw, bytes) else decode(raw)
    return None if value is None else Member.from_obj(value).org

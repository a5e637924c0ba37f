"""Reading state at one certified height, so that everything read can be proven.

Domain answers run the contracts' pure query functions (:mod:`contracts.queries`)
over a :class:`ProvenState`: it reads the state under one certified header's
``state_root`` (never the live flat table, so a block committed meanwhile
cannot mix two heights into one answer) and hands out, per state key, an
*item* ``{"key", "record", "proof"}``: the decoded record (or None when
absent) and its state proof against that root. A client checks each proof,
that ``decode(proof.value)`` is the record, and the header's certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from hashlib import sha256

from aiohttp import web

from contracts import queries
from contracts.search_buckets import Bucket
from ledger.encoding import Value, decode
from ledger.state_prune import require_state
from node.api.context import api_state, certified_obj
from node.api.errors import APIError
from node.api.params import query_uint
from node.handle import NodeHandle
from node.service import Certified


def certified_at(node: NodeHandle, height: int | None) -> Certified:
    """The certified header at ``height`` (default: the latest), or a 404."""
    head = node.chain.head().height
    if height is not None and not 1 <= height <= head:
        raise APIError(404, "not_found", f"no block at height {height} (head is {head})")
    return node.queries.latest() if height is None else node.queries.certified(height)


class ProvenState:
    """A :class:`~contracts.context.StateReader` at one certified root that proves its reads."""

    def __init__(self, node: NodeHandle, certified: Certified) -> None:
        require_state(node.chain.store, certified.header.height)
        self.certified = certified
        self.root = certified.header.state_root
        self.tree = node.queries.tree_under(self.root, certified.header.height)
        self.read: dict[bytes, bytes | None] = {}

    @classmethod
    def of_request(cls, request: web.Request) -> ProvenState:
        """State at the request's ``?height=`` (default: the latest certified height)."""
        node = api_state(request).node
        return cls(node, certified_at(node, query_uint(request, "height", lo=1)))

    def get(self, key: bytes) -> bytes | None:
        if key not in self.read:
            self.read[key] = self.tree.get_at(self.root, key)
        return self.read[key]

    def item(self, key: bytes) -> dict[str, Value]:
        """The record at ``key`` (None if absent) with its proof under this root."""
        value = self.get(key)
        return {
            "key": key,
            "record": None if value is None else decode(value),
            "proof": self.tree.prove(key, self.root).to_obj(),
        }

    def redacted_item(self, key: bytes) -> dict[str, Value]:
        """The entry at ``key`` proven present without its value: the value's SHA-256 and
        the proof's path (what a reader who may not see the value can still check)."""
        value = self.get(key)
        assert value is not None, "only a present entry is redacted"
        proof = replace(self.tree.prove(key, self.root), value=None)
        return {"key": key, "redacted": True, "value_hash": sha256(value).digest(),
                "proof": proof.to_obj()}  # fmt: skip

    def page(
        self, bucket: Bucket, start: int, limit: int, readable: Callable[[bytes], bool]
    ) -> dict[str, Value]:
        """Slots ``start`` .. ``start + limit - 1`` of ``bucket``, proven with its count:
        per slot, the slot entry and its member record, or the slot redacted when
        ``readable(record_key)`` says the reader may not see the member
        (docs/formats-state.md §6)."""
        slots: list[Value] = []
        for n, record_key in enumerate(queries.bucket_members(self, bucket, start, limit)):
            slot_key = bucket.slot_key(start + n)
            if readable(record_key):
                slots.append({"slot": self.item(slot_key), "member": self.item(record_key)})
            else:
                slots.append({"slot": self.redacted_item(slot_key), "member": None})
        count = queries.bucket_count(self, bucket)
        end = start + len(slots)
        return {
            "bucket": {"family": bucket.family.name, "name": bucket.name},
            "head": self.item(bucket.head_key),
            "start": start,
            "slots": slots,
            "next_after": end if end < count else None,
        }

    def answer(self, **fields: Value) -> dict[str, Value]:
        """``fields`` plus the height, header and certificate the proofs are against."""
        return {**fields, **certified_obj(self.certified)}

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

from aiohttp import web

from ledger.encoding import Value, decode
from node.api.context import api_state, certified_obj
from node.api.params import query_uint
from node.api.render import APIError
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
        self.certified = certified
        self.root = certified.header.state_root
        self.tree = node.queries.tree_under(self.root)
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

    def answer(self, **fields: Value) -> dict[str, Value]:
        """``fields`` plus the height, header and certificate the proofs are against."""
        return {**fields, **certified_obj(self.certified)}

"""The read gate: binds signed requests (:mod:`node.api.auth`) to the contracts' read rules.

Who is asking is decided on the *latest* state (a key revoked since stays
revoked when it asks about the past); whether a record may be shown is decided
on the record as it stood at the height being answered. An unsigned request
for a record that is not public gets 401 ``signature_required``; a signed one
whose organisation and roles the rules do not admit gets 403 ``forbidden``.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from contracts import state_keys as sk
from contracts.read_rules import Reader, may_read, may_read_key, reader_for
from ledger.encoding import Value
from ledger.state import StateTree
from node.api.auth import authenticate, signature_required
from node.api.context import api_state
from node.api.render import APIError
from node.service import Certified


class StateAt:
    """A :class:`~contracts.context.StateReader` over the state under one root."""

    def __init__(self, tree: StateTree, root: bytes) -> None:
        self.tree = tree
        self.root = root

    def get(self, key: bytes) -> bytes | None:
        return self.tree.get_at(self.root, key)


def state_at(request: web.Request, certified: Certified) -> StateAt:
    store = api_state(request).node.chain.store
    root = certified.header.state_root
    return StateAt(StateTree(store, root), root)


async def reader_of(request: web.Request) -> tuple[Reader, bool]:
    """The reader behind the request's signature (public if unsigned) and whether it signed."""
    state = api_state(request)
    body = await request.read()
    public_key = authenticate(
        request.headers,
        request.method,
        request.raw_path,
        body,
        chain_id=state.chain_id,
        now_ms=state.now_ms(),
        max_age_ms=state.config.request_max_age_ms,
    )
    if public_key is None:
        return Reader.public(), False
    head = state.node.chain.head()
    latest = StateTree(state.node.chain.store, head.state_root)
    return reader_for(StateAt(latest, head.state_root), public_key), True


def deny(what: str, signed: bool) -> APIError:
    if not signed:
        return signature_required(what)
    return APIError(403, "forbidden", f"{what} is not readable by this key's organisation or roles")


async def authorize_state_keys(
    request: web.Request, certified: Certified, keys: Iterable[tuple[bytes, bytes | None]]
) -> Reader:
    """Raise 401/403 unless every (key, value) may be shown; returns the reader."""
    reader, signed = await reader_of(request)
    state = state_at(request, certified)
    for key, value in keys:
        if not _may_read_key(state, key, value, reader):
            raise deny(f"state key {key[:80]!r} ({sk.key_kind(key)})", signed)
    return reader


async def authorize_records(
    request: web.Request, items: Iterable[tuple[str, str, dict[str, Value]]]
) -> Reader:
    """Raise 401/403 unless every (description, record type, record) may be shown."""
    reader, signed = await reader_of(request)
    for what, record_type, record in items:
        if not may_read(record_type, record, reader):
            raise deny(what, signed)
    return reader


def _may_read_key(state: StateAt, key: bytes, value: bytes | None, reader: Reader) -> bool:
    if sk.key_kind(key) == "unknown":
        # Keys of no known record type (any bytes at all): only auditors see values.
        return value is None or "auditor" in reader.roles
    return may_read_key(state, key, reader)

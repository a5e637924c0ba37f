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
from contracts.read_rules import Reader, may_read_key, reader_for
from node.api.auth import authenticate, is_signed, signature_required
from node.api.context import api_state
from node.api.disclosure import Disclosure
from node.api.errors import APIError
from node.service import Certified, StateAt


def state_at(request: web.Request, certified: Certified) -> StateAt:
    return api_state(request).node.queries.state_after(certified.header)


async def reader_of(request: web.Request) -> tuple[Reader, bool]:
    """The reader behind the request's signature (public if unsigned) and whether it signed."""
    reader, _key = await authenticated_reader(request)
    return reader, is_signed(request.headers)


async def authenticated_reader(request: web.Request) -> tuple[Reader, bytes | None]:
    """The reader behind the request and the active member key that proved it (if any).

    Keys that are not active members are the public, and their signatures are not
    checked (a state read costs far less than an Ed25519 verification).
    """
    state = api_state(request)
    latest = latest_state(request)
    body = await request.read()
    known: dict[bytes, Reader] = {}

    def is_member(key: bytes) -> bool:
        known[key] = reader_for(latest, key)
        return known[key].org is not None

    public_key = authenticate(
        request.headers,
        request.method,
        request.raw_path,
        body,
        chain_id=state.chain_id,
        node=state.node_key,
        now_ms=state.now_ms(),
        max_age_ms=state.config.request_max_age_ms,
        is_member=is_member,
    )
    if public_key is None:
        return Reader.public(), None
    return known[public_key], public_key


def latest_state(request: web.Request) -> StateAt:
    """The state after the node's latest committed block (who is asking is decided here)."""
    node = api_state(request).node
    return node.queries.state_under(node.chain.head().state_root)


async def disclosure_for(request: web.Request) -> Disclosure:
    """The one authorisation point for transactions, receipts and events of this request."""
    reader, _signed = await reader_of(request)
    return Disclosure(reader, api_state(request).node.queries.state_after)


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


def _may_read_key(state: StateAt, key: bytes, value: bytes | None, reader: Reader) -> bool:
    del value  # the rules read the record (or its parent) themselves, present or absent
    return may_read_key(state, key, reader)

"""The chain itself: blocks, certificates, validators, status, evidence, checkpoint."""

from __future__ import annotations

from aiohttp import web

from ledger.block_prune import oldest_block_height, require_block
from ledger.encoding import Value
from ledger.evidence import evidence_from_obj, evidence_summary
from ledger.state_prune import oldest_state_height
from node.api.access import reader_of
from node.api.context import api_state, certified_obj
from node.api.disclosure import Disclosure
from node.api.errors import APIError
from node.api.params import path_height, query_uint
from node.api.render import negotiate, render, render_body, render_bytes
from node.api.validator_history import validators_answer
from node.handle import NodeHandle

routes = web.RouteTableDef()


def resolve_height(node: NodeHandle, height: int | None) -> int:
    """``None`` (``latest``) is the head; a height with no block is a 404."""
    head = node.chain.head().height
    if height is None:
        height = head
    if not 1 <= height <= head:
        raise APIError(404, "not_found", f"no block at height {height} (head is {head})")
    return height


@routes.get("/v1/blocks/{height}")
async def block(request: web.Request) -> web.StreamResponse:
    """A block with its certificate; transactions the reader may not see are redacted
    (:mod:`node.api.disclosure`), so the tx root still checks and no payload leaks."""
    state = api_state(request)
    node = state.node
    height = resolve_height(node, path_height(request))
    reader, _signed = await reader_of(request)
    fmt = negotiate(request.headers.get("Accept"))
    cache_key = (height, fmt)
    public = reader.org is None and not reader.roles
    require_block(node.chain.store, height)  # pruned since its answer was kept, too
    body = state.public_answers.get(cache_key) if public else None
    if body is None:
        blk = node.queries.block(height)
        cert = node.chain.certificate(height)
        obj, hidden = Disclosure(reader, node.queries.state_after).block(blk)
        value: dict[str, Value] = {
            "height": height,
            "hash": blk.hash,
            "block": obj,
            "redacted": hidden,
            "certificate": None if cert is None else cert.to_obj(),
        }
        body = render_body(value, fmt)
        if public and cert is not None:
            state.public_answers.put(cache_key, body)
    return render_bytes(body, fmt)


@routes.get("/v1/blocks/{height}/certificate")
async def certificate(request: web.Request) -> web.StreamResponse:
    node = api_state(request).node
    height = resolve_height(node, path_height(request))
    certified = node.queries.certified(height)
    return render(request, {"block_hash": certified.header.hash, **certified_obj(certified)})


@routes.get("/v1/validators")
async def validators(request: web.Request) -> web.StreamResponse:
    """The set voting on ``?height=`` (default: the next block) and the certified chain of
    set changes from genesis (``?after=`` pages it: node/api/validator_history.py)."""
    node = api_state(request).node
    head = node.chain.head().height
    height = query_uint(request, "height", lo=1, hi=head + 2)
    after = query_uint(request, "after") or 0
    return render(request, validators_answer(node.chain, height, after))


@routes.get("/v1/head")
async def head(request: web.Request) -> web.StreamResponse:
    """The head statements this node holds for block ``?height=`` (default: its head):
    what a client checks when an answer's block is older than its limit and the network
    is idle (lightclient/head.py). Public: they say only which block was the head when."""
    node = api_state(request).node
    height = resolve_height(node, query_uint(request, "height", lo=1))
    statements: list[Value] = [s.to_obj() for s in node.head_statements(height)]
    header = node.chain.header(height)
    block_hash = None if header is None else header.hash
    return render(request, {"height": height, "block_hash": block_hash, "statements": statements})


@routes.get("/v1/status")
async def status(request: web.Request) -> web.StreamResponse:
    node = api_state(request).node
    head = node.chain.head()
    value: dict[str, Value] = {
        "chain_id": node.genesis.chain_id,
        "genesis_hash": node.genesis.hash,
        "height": head.height,
        "block_hash": head.block_hash,
        "time_ms": head.time_ms,
        "mempool_size": len(node.mempool),
        "public_key": node.public_key,
        # state (and its proofs) is served from this height on; 0 on an archive node
        "oldest_state_height": oldest_state_height(node.chain.store),
        # block bodies and receipts from this height on (headers and certificates of
        # every height); 1 on an archive node ([storage] block_keep_heights)
        "oldest_block_height": oldest_block_height(node.chain.store),
    }
    value.update(node.status())
    return render(request, value)


EVIDENCE_BLOCKS = 20  # blocks with evidence per page, by default
MAX_EVIDENCE_BLOCKS = 100


@routes.get("/v1/evidence")
async def evidence(request: web.Request) -> web.StreamResponse:
    """Committed equivocation evidence, by block from ``from`` (at most ``limit`` blocks
    that commit some, each with its header and certificate so that a client checks the
    pieces against the header's evidence root), then this node's pending pool. Public:
    evidence holds votes, proposals and block hashes only."""
    node = api_state(request).node
    start = query_uint(request, "from", lo=1) or 1
    limit = query_uint(request, "limit", lo=1, hi=MAX_EVIDENCE_BLOCKS) or EVIDENCE_BLOCKS
    found = node.chain.committed_evidence(start, limit + 1)
    items: list[Value] = []
    blocks: list[Value] = []
    for height, pieces in found[:limit]:
        header = node.chain.header(height)
        cert = node.chain.certificate(height)
        blocks.append(
            {
                "height": height,
                "header": None if header is None else header.to_obj(),
                "certificate": None if cert is None else cert.to_obj(),
            }
        )
        for index, piece in enumerate(pieces):
            items.append(
                {"status": "committed", "height": height, "index": index} | evidence_summary(piece)
            )
    for obj in node.evidence():
        items.append(
            {"status": "pending", "height": None, "index": None}
            | evidence_summary(evidence_from_obj(obj))
        )
    next_from = found[limit][0] if len(found) > limit else None
    return render(request, {"evidence": items, "blocks": blocks, "next_from": next_from})


@routes.get("/v1/checkpoint")
async def checkpoint(request: web.Request) -> web.StreamResponse:
    """The latest certified header with its log size and root: what auditors publish."""
    node = api_state(request).node
    certified = node.queries.latest()
    header = certified.header
    return render(
        request,
        {
            "chain_id": node.genesis.chain_id,
            "genesis_hash": node.genesis.hash,
            "block_hash": header.hash,
            "log_size": header.log_size,
            "log_root": header.log_root,
            **certified_obj(certified),
        },
    )

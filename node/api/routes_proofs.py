"""Proofs a client checks without trusting this node: state values and the Merkle log.

Each answer carries the certified header it is proven against (and that
header's commit certificate), so the client checks, in order: the certificate
against the genesis validator set, the header hash against the certificate,
and the proof against the header's ``state_root`` or ``log_root``.
"""

from __future__ import annotations

from aiohttp import web

from ledger.encoding import Value
from node.api.access import authorize_state_keys
from node.api.context import api_state, certified_obj
from node.api.errors import APIError
from node.api.params import MAX_INT, malformed, parse_hex, parse_uint, query_uint
from node.api.proven import certified_at
from node.api.render import render
from node.handle import NodeHandle
from node.service import Certified

MAX_STATE_KEY = 1024

routes = web.RouteTableDef()


@routes.get("/v1/state/{key_hex}")
async def state(request: web.Request) -> web.StreamResponse:
    """A raw state value with its proof; the read rules of its record type apply."""
    key = parse_hex(request.match_info["key_hex"], "state key", max_size=MAX_STATE_KEY)
    if not key:
        raise malformed("state key must not be empty")
    node = api_state(request).node
    certified = certified_at(node, query_uint(request, "height", lo=1))
    answer = node.queries.state(key, certified.header.height)
    await authorize_state_keys(request, certified, [(key, answer.value)])
    return render(
        request,
        {
            "key": key,
            "value": answer.value,
            "proof": answer.proof.to_obj(),
            **certified_obj(answer.certified),
        },
    )


@routes.get("/v1/log/consistency")
async def consistency(request: web.Request) -> web.StreamResponse:
    """Proof that the log at ``new`` (default: the latest header's size) extends ``old``."""
    node = api_state(request).node
    latest = node.queries.latest()
    old = query_uint(request, "old", required=True)
    new = query_uint(request, "new")
    new_size = latest.header.log_size if new is None else new
    assert old is not None
    if old > new_size:
        raise malformed(f"old size {old} is larger than new size {new_size}")
    certified = _certified_with_log_size(node, latest, new_size)
    proof = node.queries.consistency(old, new_size)
    log = node.queries.log()
    return render(
        request,
        {
            "old_size": old,
            "new_size": new_size,
            "old_root": log.root(old),
            "new_root": certified.header.log_root,
            "proof": proof.to_obj(),
            **certified_obj(certified),
        },
    )


@routes.get("/v1/log/inclusion/{index}")
async def inclusion(request: web.Request) -> web.StreamResponse:
    """Proof that leaf ``index`` is in the log of ``size`` leaves (default: latest header's)."""
    node = api_state(request).node
    latest = node.queries.latest()
    index = parse_uint(request.match_info["index"], "index", hi=MAX_INT)
    size = query_uint(request, "size", lo=1)
    tree_size = latest.header.log_size if size is None else size
    certified = _certified_with_log_size(node, latest, tree_size)
    if index >= tree_size:
        raise APIError(404, "not_found", f"leaf {index} is not in the log of size {tree_size}")
    log = node.queries.log()
    proof = log.prove_inclusion(index, tree_size)
    value: dict[str, Value] = {
        "leaf_index": index,
        "tree_size": tree_size,
        "leaf_hash": log.get_leaf_hash(index),
        "root": certified.header.log_root,
        "proof": proof.to_obj(),
        **certified_obj(certified),
    }
    return render(request, value)


def _certified_with_log_size(node: NodeHandle, latest: Certified, size: int) -> Certified:
    """A certified header whose log has exactly ``size`` leaves (its root anchors proofs)."""
    if size == latest.header.log_size:
        return latest
    if size > latest.header.log_size:
        raise APIError(404, "not_found", f"the log has {latest.header.log_size} leaves, not {size}")
    height = node.queries.header_with_log_size(size)
    if height is None:
        raise APIError(404, "not_found", f"no block ends with a log of exactly {size} leaves")
    return node.queries.certified(height)

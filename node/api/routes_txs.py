"""Submitting transactions and asking for their receipts.

``POST /v1/txs`` takes one transaction (``{"tx": hex}``) or a batch
(``{"txs": [hex, ...]}``), as JSON or as canonical msgpack with the raw bytes.
Every transaction is decoded strictly before the mempool sees it; a batch with
a malformed item is refused as a whole (400 naming the item), since that is a
client bug, while mempool refusals are answered per item. A full mempool is
answered 429 before the transactions are decoded or their signatures checked:
under overload that work would only end in the same refusal, and it would take
CPU from the blocks that make room.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ledger.encoding import Value, decode
from ledger.errors import LedgerError
from ledger.tx import MAX_TX_BYTES, Transaction
from node.api.access import disclosure_for
from node.api.context import api_state, certified_obj
from node.api.disclosure import Disclosure
from node.api.params import malformed, parse_hex
from node.api.render import JSON, MSGPACK, APIError, render
from node.mempool import MempoolError
from node.service import NotFound, ReceiptAnswer

MAX_BATCH = 10_000
_MSGPACK_TYPES = frozenset({MSGPACK, "application/x-msgpack", "application/vnd.msgpack"})

routes = web.RouteTableDef()


def _mempool_full() -> APIError:
    return APIError(429, "mempool_full", "mempool full, retry later", headers={"Retry-After": "1"})


@routes.post("/v1/txs")
async def submit(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    typed = "Content-Type" in request.headers
    raw_txs, single = parse_submission(body, request.content_type, typed)
    node = api_state(request).node
    if node.mempool.full:
        raise _mempool_full()
    txs = [_decode_tx(raw, i, single) for i, raw in enumerate(raw_txs)]
    errors = await node.submit(txs)
    if single:
        error = errors[0]
        if error is not None:
            raise _refusal(error)
        return render(request, {"hash": txs[0].hash, "status": "pending"}, status=202)
    if all(e is not None and e.code == "mempool_full" for e in errors):
        raise _mempool_full()
    results = [_item_result(tx, error) for tx, error in zip(txs, errors, strict=True)]
    return render(request, {"results": results})


@routes.get("/v1/txs/{hash}")
async def receipt(request: web.Request) -> web.StreamResponse:
    tx_hash = parse_hex(request.match_info["hash"], "transaction hash", size=32)
    node = api_state(request).node
    try:
        answer = node.queries.receipt(tx_hash)
    except NotFound:
        if tx_hash in node.mempool:
            return render(request, {"hash": tx_hash, "status": "pending"}, status=202)
        raise APIError(404, "not_found", f"transaction {tx_hash.hex()} is not known") from None
    disclosure = await disclosure_for(request)
    return render(request, receipt_obj(answer, disclosure))


def receipt_obj(answer: ReceiptAnswer, disclosure: Disclosure) -> dict[str, Value]:
    """Receipt (redacted for a reader who may not see its transaction), its proofs in the
    block's tx and results roots and in the log, header, certificate."""
    r = answer.receipt
    return {
        "hash": r.tx_hash,
        "status": "committed" if r.ok else "failed",
        "receipt": disclosure.receipt(r, answer.tx, answer.certified.header),
        "block_proof": answer.block_proof.to_obj(),
        "results_proof": answer.results_proof.to_obj(),
        "log_proof": answer.log_proof.to_obj(),
        **certified_obj(answer.certified),
    }


# --- parsing ------------------------------------------------------------------------------------


def parse_submission(body: bytes, content_type: str, typed: bool) -> tuple[list[bytes], bool]:
    """The raw transactions in a submission body, and whether it held a single one."""
    if content_type in _MSGPACK_TYPES:
        try:
            doc = decode(body)
        except LedgerError as exc:
            raise malformed(f"body is not canonical msgpack: {exc}") from None
        return _items(doc, bytes, "bytes")
    if typed and content_type != JSON:
        raise APIError(415, "unsupported_media_type", f"send {JSON} or {MSGPACK}")
    hexes, single = _items(_parse_json(body), str, "hex strings")
    raws = [parse_hex(h, f"transaction {i}", max_size=MAX_TX_BYTES) for i, h in enumerate(hexes)]
    return raws, single


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise malformed("body is not valid JSON") from None


def _items(doc: Any, kind: type, what: str) -> tuple[list[Any], bool]:
    if not isinstance(doc, dict) or len(doc) != 1 or not ({"tx", "txs"} & set(doc)):
        raise malformed('body must be {"tx": ...} or {"txs": [...]}')
    if "tx" in doc:
        if not isinstance(doc["tx"], kind):
            raise malformed(f'"tx" must be {what[:-1]}')
        return [doc["tx"]], True
    items = doc["txs"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise malformed(f'"txs" must be a list of 1..{MAX_BATCH} {what}')
    if not all(isinstance(item, kind) for item in items):
        raise malformed(f'"txs" must hold {what} only')
    return items, False


def _decode_tx(raw: bytes, index: int, single: bool) -> Transaction:
    if len(raw) > MAX_TX_BYTES:
        raise APIError(413, "too_large", f"transaction {index} is over {MAX_TX_BYTES} bytes")
    try:
        return Transaction.decode(raw)
    except LedgerError as exc:
        where = "transaction" if single else f"transaction {index}"
        raise malformed(f"{where} is not a valid canonical transaction: {exc}") from None


def _refusal(error: MempoolError) -> APIError:
    headers = {"Retry-After": "1"} if error.http_status == 429 else None
    return APIError(error.http_status, error.code, error.message, headers=headers)


def _item_result(tx: Transaction, error: MempoolError | None) -> dict[str, Value]:
    if error is None:
        return {"hash": tx.hash, "status": "pending"}
    return {
        "hash": tx.hash,
        "status": "rejected",
        "error": {"code": error.code, "message": error.message},
    }

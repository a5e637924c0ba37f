"""Submitting transactions and asking for their receipts.

``POST /v1/txs`` takes one transaction (``{"tx": hex}``) or a batch
(``{"txs": [hex, ...]}``), as JSON or as canonical msgpack with the raw bytes.
The cheap refusals come first, so that what will be refused costs the node little
(docs/api.md, "Submitting"):

1. the body's bytes are charged to the client's per-byte bucket (on the
   ``Content-Length`` header, before the body is read); a full mempool is answered 429
   ``mempool_full``, and a mempool whose ready transactions already fill the latency
   budget (``node.latency_budget``) 429 ``overloaded`` with the client's turn in
   ``Retry-After`` — there, before the body is read: above saturation most requests end
   here, and reading and parsing a refused batch of 2,000 cost the node more than the
   refusal (docs/performance.md, "Refused before the body is read");
2. the envelope is parsed (400 if it is not one), and the same two refusals are made for
   a body sent without ``Content-Length``, before any transaction is decoded; a request
   signed like a signed read is checked (401 when the signature is wrong); a batch of
   more than ``[api] unsigned_batch_max`` transactions needs a request signed by an
   active member (413 ``batch_too_large``);
3. the transactions are charged to the per-transaction bucket (429 ``rate_limited``);
4. each transaction's sender is read from the fixed place it has at the end of the
   canonical bytes and looked up: an item from a key that is not an active member is
   refused 403 (``unknown_sender`` / ``revoked``) without being decoded;
5. the latency budget's room is asked for the rest: what is beyond it (the batch's
   last items) is refused 429 ``overloaded`` (with its turn) without being decoded,
   once the items that fit have been decoded;
6. the rest is decoded strictly; a batch with a malformed item is refused as a whole
   (400 naming the item), since that is a client bug; then the node admits them
   (``node.mempool``: nonce window and pinning limits before the signature, each
   signature checked once), and mempool refusals are answered per item.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ledger.encoding import Value, decode
from ledger.errors import LedgerError
from ledger.tx import MAX_TX_BYTES, Transaction, peek_hash, peek_sender
from node.api.access import authenticated_reader, disclosure_for
from node.api.context import APIState, api_state, certified_obj
from node.api.disclosure import Disclosure
from node.api.errors import APIError
from node.api.params import malformed, parse_hex
from node.api.ratelimit import SUBMIT_LIMITS, RateLimiter, charge
from node.api.render import JSON, MSGPACK, render
from node.api.waits import retry_headers
from node.handle import NodeHandle
from node.mempool_errors import DEFAULT_RETRY_S, MempoolError, RetryLaterError, retry_after_of
from node.service import NotFound, ReceiptAnswer

MAX_BATCH = 10_000
_MSGPACK_TYPES = frozenset({MSGPACK, "application/x-msgpack", "application/vnd.msgpack"})

routes = web.RouteTableDef()


def _mempool_full() -> APIError:
    headers = retry_headers(DEFAULT_RETRY_S)
    return APIError(429, "mempool_full", "mempool full, retry later", headers=headers)


@routes.post("/v1/txs")
async def submit(request: web.Request) -> web.StreamResponse:
    state = api_state(request)
    limits = request.app[SUBMIT_LIMITS]
    client = state.client(request)
    announced = request.content_length
    if announced is not None:
        _charge(state, limits.per_byte, client, announced, "bytes")
        # Not now: said before the body is even read (its size says about how many),
        # after a short wait for a commit to make room (node/waiting_room.py).
        count = _estimated_count(announced, request.content_type, state)
        await _wait_when_busy(state, client, count)
        _refuse_when_busy(state, count)
    body = await request.read()
    if announced is None:
        _charge(state, limits.per_byte, client, len(body), "bytes")
    typed = "Content-Type" in request.headers
    raw_txs, single = parse_submission(body, request.content_type, typed)
    node = state.node
    _refuse_when_busy(state, len(raw_txs))
    cap = state.config.unsigned_batch_max
    if len(raw_txs) > cap and not await _signed_by_member(request):
        raise APIError(
            413,
            "batch_too_large",
            f"a batch not signed by an active member holds at most {cap} transactions "
            f"(signed: {MAX_BATCH}); this one holds {len(raw_txs)}",
        )
    _charge(state, limits.per_tx, client, len(raw_txs), "transactions")
    early: dict[int, tuple[bytes, MempoolError]] = {}  # refused before being decoded
    senders: dict[bytes, MempoolError | None] = {}
    candidates: list[tuple[int, bool]] = []  # (item, whether its sender could be read)
    for i, raw in enumerate(raw_txs):
        if len(raw) > MAX_TX_BYTES:
            raise APIError(413, "too_large", f"transaction {i} is over {MAX_TX_BYTES} bytes")
        sender = peek_sender(raw)
        if sender is not None:
            if sender not in senders:
                senders[sender] = node.mempool.sender_refusal(sender)
            problem = senders[sender]
            if problem is not None:
                if single:
                    raise _refusal(problem)
                early[i] = (peek_hash(raw), problem)
                continue
        candidates.append((i, sender is not None))
    txs = _decode_within_budget(node, raw_txs, candidates, early, single)
    errors = iter(await node.submit(txs) if txs else [])
    if single:
        error = next(errors)
        if error is not None:
            raise _refusal(error)
        return render(request, {"hash": txs[0].hash, "status": "pending"}, status=202)
    return _batch_answer(request, len(raw_txs), early, txs, errors)


def _batch_answer(
    request: web.Request,
    count: int,
    early: dict[int, tuple[bytes, MempoolError]],
    txs: list[Transaction],
    errors: Iterator[MempoolError | None],
) -> web.StreamResponse:
    """One result per item, in order: refused on its sender (``early``), or the mempool's
    answer to the decoded ``txs``; ``Retry-After`` the longest a "not now" item was told."""
    decoded = iter(txs)
    results: list[dict[str, Value]] = []
    retry_after = 0.0
    for i in range(count):
        error: MempoolError | None
        if i in early:
            tx_hash, error = early[i]
        else:
            tx = next(decoded)
            tx_hash, error = tx.hash, next(errors)
        if isinstance(error, RetryLaterError):
            retry_after = max(retry_after, error.retry_after_s)
        results.append(_item_result(tx_hash, error))
    if all(r["status"] == "rejected" and r["error"]["code"] == "mempool_full" for r in results):
        raise _mempool_full()
    headers = retry_headers(retry_after) if retry_after else None
    return render(request, {"results": results}, headers=headers)


def _estimated_count(size: int, content_type: str, state: APIState) -> int:
    """About how many transactions a body of ``size`` bytes holds, at the pending ones'
    mean size (hex in JSON: twice the bytes). Only a refusal's turn is reckoned with it
    (``node.latency_budget``); whether to refuse does not depend on it."""
    per_tx = state.node.mempool.mean_tx_bytes * (1 if content_type in _MSGPACK_TYPES else 2)
    return max(1, min(MAX_BATCH, round(size / per_tx)))


async def _wait_when_busy(state: APIState, client: str, count: int) -> None:
    """When the latency budget has no room (and the mempool is not full), wait in the
    waiting room, if there is one, until a commit lets this request in or the wait is
    over; the budget is checked again after it either way."""
    mempool, room = state.node.mempool, state.waiting_room
    if room is None or mempool.full or mempool.client_room(time.monotonic()) > 0:
        return
    await room.wait(client, count)


def _refuse_when_busy(state: APIState, count: int) -> None:
    """429 before anything is decoded: the mempool is full, or its ready transactions
    already fill the latency budget (``node.latency_budget``)."""
    mempool = state.node.mempool
    if mempool.full:
        raise _mempool_full()
    overloaded = mempool.overloaded(time.monotonic(), count)
    if overloaded is not None:
        state.metrics.overloaded.inc(count)
        raise _refusal(overloaded)


async def _signed_by_member(request: web.Request) -> bool:
    """Whether an active member signed the request (only then is its signature checked)."""
    _reader, member_key = await authenticated_reader(request)
    return member_key is not None


def _charge(state: APIState, bucket: RateLimiter, client: str, cost: int, what: str) -> None:
    charge(bucket, client, cost, f"{what} submitted", state.metrics.rate_limited.inc)


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


def _decode_within_budget(
    node: NodeHandle,
    raw_txs: list[bytes],
    candidates: list[tuple[int, bool]],
    early: dict[int, tuple[bytes, MempoolError]],
    single: bool,
) -> list[Transaction]:
    """The ``candidates`` the latency budget has room for now, decoded; the rest refused
    ``overloaded`` into ``early`` without being decoded. Above saturation the budget
    cut most of each retried batch after it was decoded: four nodes offered 3,500 tx/s
    decoded 5.8 transactions for each one they committed (docs/performance.md,
    "Decoded only within the budget"). An item whose sender could not be read is
    decoded wherever it is, so a malformed one still fails the request with 400; and
    the refusal is made only once every decoded item passed, so that a request that
    fails changes nothing (the budget's count of clients turned away included)."""
    room = node.client_room()
    txs: list[Transaction] = []
    beyond: list[int] = []
    for n, (i, peeked) in enumerate(candidates):
        if n >= room and peeked:
            beyond.append(i)
        else:
            txs.append(_decode_tx(raw_txs[i], i, single))
    if beyond:
        refusal = node.refuse_over_budget(len(beyond))
        if single:
            raise _refusal(refusal)
        for i in beyond:
            early[i] = (peek_hash(raw_txs[i]), refusal)
    return txs


def _decode_tx(raw: bytes, index: int, single: bool) -> Transaction:
    if len(raw) > MAX_TX_BYTES:
        raise APIError(413, "too_large", f"transaction {index} is over {MAX_TX_BYTES} bytes")
    try:
        return Transaction.decode(raw)
    except LedgerError as exc:
        where = "transaction" if single else f"transaction {index}"
        raise malformed(f"{where} is not a valid canonical transaction: {exc}") from None


def _refusal(error: MempoolError) -> APIError:
    headers = None
    if error.http_status == 429:
        headers = retry_headers(retry_after_of(error))
    return APIError(error.http_status, error.code, error.message, headers=headers)


def _item_result(tx_hash: bytes, error: MempoolError | None) -> dict[str, Value]:
    if error is None:
        return {"hash": tx_hash, "status": "pending"}
    return {
        "hash": tx_hash,
        "status": "rejected",
        "error": {"code": error.code, "message": error.message},
    }

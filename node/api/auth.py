"""Signed reads: who is asking, proven by a member key, for records that are not public.

A client signs each request with its member key (Ed25519, purpose
``API_REQUEST``, this chain's id) over the canonical encoding of::

    {"body_sha256": SHA-256(body), "chain_id": ..., "method": "GET",
     "node": <the node's public key>, "path": "/v1/shipments/S1?x=y",
     "time_ms": 1700000000000}

and sends three headers: ``X-CityLedger-Key`` (hex public key),
``X-CityLedger-Time`` (the ``time_ms`` signed) and ``X-CityLedger-Signature``
(hex). ``path`` is the request target exactly as sent on the wire (path and
query string, percent-encoding included); ``node`` is the public key the node
gives in ``/v1/status``, so a signed read captured on its way to one node is
refused by every other node. The node accepts a signature within
``request_max_age_ms`` of its own clock in either direction; whether the key
may see the record is then up to the read rules (:mod:`contracts.read_rules`).

Cheap checks come first: the headers' shape, the time window, and whether the
key belongs to an active member at all (a state read) — a key that does not is
the public, and its signature is never verified. Only then is the Ed25519
signature checked (the one expensive step).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping

from ledger.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, PrivateKey, Purpose, verify
from ledger.encoding import encode
from ledger.errors import SignatureError
from node.api.errors import APIError

KEY_HEADER = "X-CityLedger-Key"
TIME_HEADER = "X-CityLedger-Time"
SIGNATURE_HEADER = "X-CityLedger-Signature"
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_TIME = re.compile(r"^[0-9]{1,19}$")


def request_message(
    method: str, path: str, body: bytes, time_ms: int, chain_id: str, node: bytes
) -> bytes:
    """The canonical bytes a request signature covers."""
    return encode(
        {
            "method": method.upper(),
            "path": path,
            "body_sha256": hashlib.sha256(body).digest(),
            "time_ms": time_ms,
            "chain_id": chain_id,
            "node": node,
        }
    )


def sign_request(
    key: PrivateKey,
    chain_id: str,
    node: bytes,
    method: str,
    path: str,
    body: bytes,
    time_ms: int,
) -> dict[str, str]:
    """Headers that sign a request to the node whose public key is ``node`` (client side)."""
    message = request_message(method, path, body, time_ms, chain_id, node)
    signature = key.sign(Purpose.API_REQUEST, chain_id, message)
    return {
        KEY_HEADER: key.public_key.hex(),
        TIME_HEADER: str(time_ms),
        SIGNATURE_HEADER: signature.hex(),
    }


def is_signed(headers: Mapping[str, str]) -> bool:
    return any(name in headers for name in (KEY_HEADER, TIME_HEADER, SIGNATURE_HEADER))


def authenticate(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    chain_id: str,
    node: bytes,
    now_ms: int,
    max_age_ms: int,
    is_member: Callable[[bytes], bool],
) -> bytes | None:
    """The active member key that signed this request, or None when there is none.

    None for an unsigned request and for a key that ``is_member`` does not know
    (unknown or revoked keys are the public; their signatures are not checked).
    Raises :class:`APIError` 401 for a signature that is incomplete, stale or wrong.
    """
    if not is_signed(headers):
        return None
    key_hex = headers.get(KEY_HEADER, "")
    time_text = headers.get(TIME_HEADER, "")
    sig_hex = headers.get(SIGNATURE_HEADER, "")
    if not key_hex or not time_text or not sig_hex:
        raise _bad(f"a signed request needs all of {KEY_HEADER}, {TIME_HEADER}, {SIGNATURE_HEADER}")
    public_key = _hex_field(key_hex, KEY_HEADER, PUBLIC_KEY_SIZE)
    signature = _hex_field(sig_hex, SIGNATURE_HEADER, SIGNATURE_SIZE)
    if not _TIME.match(time_text):
        raise _bad(f"{TIME_HEADER} must be milliseconds since the epoch")
    time_ms = int(time_text)
    if abs(now_ms - time_ms) > max_age_ms:
        raise APIError(
            401,
            "request_expired",
            f"signed at {time_ms}, the node's time is {now_ms}: more than {max_age_ms} ms apart",
        )
    if not is_member(public_key):
        return None
    message = request_message(method, path, body, time_ms, chain_id, node)
    try:
        verify(public_key, Purpose.API_REQUEST, chain_id, message, signature)
    except SignatureError as exc:
        raise _bad(
            f"{exc} (over method, path with query, body hash, time, chain id and this "
            "node's public key from /v1/status)"
        ) from None
    return public_key


def signature_required(what: str) -> APIError:
    return APIError(
        401,
        "signature_required",
        f"{what} is not public: sign the request with a member key "
        f"({KEY_HEADER}, {TIME_HEADER}, {SIGNATURE_HEADER})",
    )


def _hex_field(text: str, header: str, size: int) -> bytes:
    if len(text) != 2 * size or not _HEX.match(text):
        raise _bad(f"{header} must be {size} bytes of hex")
    return bytes.fromhex(text)


def _bad(message: str) -> APIError:
    return APIError(401, "bad_signature", message)

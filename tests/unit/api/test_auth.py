"""Signed reads: the client-side helper and the server-side check."""

from __future__ import annotations

import pytest

from ledger.crypto import PrivateKey
from node.api.auth import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIME_HEADER,
    authenticate,
    sign_request,
)
from node.api.render import APIError

CHAIN = "cityledger-test"
NOW = 1_700_000_000_000
AGE = 30_000
KEY = PrivateKey.from_label("auth-test")
PATH = "/v1/shipments/S-1?height=3"


def check(
    headers: dict[str, str],
    *,
    path: str = PATH,
    body: bytes = b"",
    now: int = NOW,
    chain: str = CHAIN,
    method: str = "GET",
) -> bytes | None:
    return authenticate(headers, method, path, body, chain_id=chain, now_ms=now, max_age_ms=AGE)


def code_of(headers: dict[str, str], **kwargs: object) -> tuple[int, str]:
    with pytest.raises(APIError) as info:
        check(headers, **kwargs)  # type: ignore[arg-type]
    return info.value.status, info.value.code


def test_round_trip() -> None:
    headers = sign_request(KEY, CHAIN, "get", PATH, b"", NOW)
    assert set(headers) == {KEY_HEADER, TIME_HEADER, SIGNATURE_HEADER}
    assert check(headers) == KEY.public_key
    assert check(headers, now=NOW + AGE) == KEY.public_key
    assert check(headers, now=NOW - AGE) == KEY.public_key


def test_unsigned_is_none() -> None:
    assert check({}) is None


def test_body_is_covered() -> None:
    headers = sign_request(KEY, CHAIN, "POST", PATH, b"payload", NOW)
    assert check(headers, body=b"payload", method="POST") == KEY.public_key
    assert code_of(headers, body=b"other", method="POST") == (401, "bad_signature")


@pytest.mark.parametrize(
    "change",
    [
        {"path": "/v1/shipments/S-2?height=3"},
        {"path": "/v1/shipments/S-1"},
        {"chain": "other-chain"},
        {"method": "POST"},
    ],
)
def test_anything_else_signed_is_covered(change: dict[str, object]) -> None:
    headers = sign_request(KEY, CHAIN, "GET", PATH, b"", NOW)
    assert code_of(headers, **change) == (401, "bad_signature")


def test_expiry_in_both_directions() -> None:
    headers = sign_request(KEY, CHAIN, "GET", PATH, b"", NOW)
    assert code_of(headers, now=NOW + AGE + 1) == (401, "request_expired")
    assert code_of(headers, now=NOW - AGE - 1) == (401, "request_expired")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h.pop(SIGNATURE_HEADER),
        lambda h: h.pop(KEY_HEADER),
        lambda h: h.pop(TIME_HEADER),
        lambda h: h.__setitem__(KEY_HEADER, "zz" * 32),
        lambda h: h.__setitem__(KEY_HEADER, "00" * 31),
        lambda h: h.__setitem__(SIGNATURE_HEADER, "00" * 64),
        lambda h: h.__setitem__(SIGNATURE_HEADER, "0"),
        lambda h: h.__setitem__(TIME_HEADER, "-5"),
        lambda h: h.__setitem__(TIME_HEADER, "1e12"),
        lambda h: h.__setitem__(KEY_HEADER, PrivateKey.from_label("other").public_key.hex()),
    ],
)
def test_broken_signatures_are_401(mangle: object) -> None:
    headers = sign_request(KEY, CHAIN, "GET", PATH, b"", NOW)
    mangle(headers)  # type: ignore[operator]
    status, _code = code_of(headers)
    assert status == 401

"""Signed reads: the client-side helper and the server-side check."""

from __future__ import annotations

import pytest

from ledger.crypto import PrivateKey
from node.api import auth
from node.api.auth import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIME_HEADER,
    authenticate,
    sign_request,
)
from node.api.errors import APIError

CHAIN = "cityledger-test"
NOW = 1_700_000_000_000
AGE = 30_000
KEY = PrivateKey.from_label("auth-test")
OTHER = PrivateKey.from_label("other")
NODE = PrivateKey.from_label("auth-test-node").public_key
OTHER_NODE = PrivateKey.from_label("auth-test-other-node").public_key
MEMBERS = {KEY.public_key, OTHER.public_key}
PATH = "/v1/shipments/S-1?height=3"


def check(
    headers: dict[str, str],
    *,
    path: str = PATH,
    body: bytes = b"",
    now: int = NOW,
    chain: str = CHAIN,
    method: str = "GET",
    node: bytes = NODE,
) -> bytes | None:
    return authenticate(
        headers,
        method,
        path,
        body,
        chain_id=chain,
        node=node,
        now_ms=now,
        max_age_ms=AGE,
        is_member=MEMBERS.__contains__,
    )


def code_of(headers: dict[str, str], **kwargs: object) -> tuple[int, str]:
    with pytest.raises(APIError) as info:
        check(headers, **kwargs)  # type: ignore[arg-type]
    return info.value.status, info.value.code


def test_round_trip() -> None:
    headers = sign_request(KEY, CHAIN, NODE, "get", PATH, b"", NOW)
    assert set(headers) == {KEY_HEADER, TIME_HEADER, SIGNATURE_HEADER}
    assert check(headers) == KEY.public_key
    assert check(headers, now=NOW + AGE) == KEY.public_key
    assert check(headers, now=NOW - AGE) == KEY.public_key


def test_unsigned_is_none() -> None:
    assert check({}) is None


def test_body_is_covered() -> None:
    headers = sign_request(KEY, CHAIN, NODE, "POST", PATH, b"payload", NOW)
    assert check(headers, body=b"payload", method="POST") == KEY.public_key
    assert code_of(headers, body=b"other", method="POST") == (401, "bad_signature")


@pytest.mark.parametrize(
    "change",
    [
        {"path": "/v1/shipments/S-2?height=3"},
        {"path": "/v1/shipments/S-1"},
        {"chain": "other-chain"},
        {"method": "POST"},
        {"node": OTHER_NODE},
    ],
)
def test_anything_else_signed_is_covered(change: dict[str, object]) -> None:
    headers = sign_request(KEY, CHAIN, NODE, "GET", PATH, b"", NOW)
    assert code_of(headers, **change) == (401, "bad_signature")


def test_expiry_in_both_directions() -> None:
    headers = sign_request(KEY, CHAIN, NODE, "GET", PATH, b"", NOW)
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
        lambda h: h.__setitem__(KEY_HEADER, OTHER.public_key.hex()),
    ],
)
def test_broken_signatures_are_401(mangle: object) -> None:
    headers = sign_request(KEY, CHAIN, NODE, "GET", PATH, b"", NOW)
    mangle(headers)  # type: ignore[operator]
    status, _code = code_of(headers)
    assert status == 401


def test_a_read_signed_for_one_node_is_refused_by_another() -> None:
    """A signed read names the node it is for: captured, it cannot be replayed to another."""
    headers = sign_request(KEY, CHAIN, NODE, "GET", PATH, b"", NOW)
    assert check(headers) == KEY.public_key
    assert code_of(headers, node=OTHER_NODE) == (401, "bad_signature")


def test_a_key_that_is_no_member_is_the_public_and_costs_no_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cheap checks first: an unknown key's signature is never verified."""
    calls: list[bytes] = []
    real = auth.verify

    def counting(public_key: bytes, *args: object) -> None:
        calls.append(public_key)
        real(public_key, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(auth, "verify", counting)
    stranger = PrivateKey.from_label("stranger")
    headers = sign_request(stranger, CHAIN, NODE, "GET", PATH, b"", NOW)
    headers[SIGNATURE_HEADER] = "00" * 64  # not even a valid signature: never looked at
    assert check(headers) is None
    assert calls == []
    assert check(sign_request(KEY, CHAIN, NODE, "GET", PATH, b"", NOW)) == KEY.public_key
    assert calls == [KEY.public_key]

"""Whatever a client sends gets a 4xx (or a normal answer), never a 500.

Hypothesis drives bodies, paths, query strings and auth headers against one
app over a real chain; every answer must also keep the error shape.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.encoding import encode
from node.api.auth import KEY_HEADER, SIGNATURE_HEADER, TIME_HEADER
from tests.unit.ledger.encoding_kit import canonical_values
from tests.unit.node.api.conftest import Client

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
hexish = st.text(alphabet="0123456789abcdefABCDEFxz -", max_size=80)
segment = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="/?#%"), min_size=1, max_size=30
)


async def assert_client_error(response: object, allowed: frozenset[int] = frozenset()) -> None:
    status = response.status  # type: ignore[attr-defined]
    assert status < 500 or status in allowed, status
    if status >= 400:
        body = await response.json()  # type: ignore[attr-defined]
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}


@FUZZ
@given(
    body=st.binary(max_size=300),
    ctype=st.sampled_from(
        [
            "application/json",
            "application/msgpack",
            "text/plain",
            "",
            "application/json; charset=latin-1",
        ]
    ),
)
async def test_random_bytes_to_submit(client: Client, body: bytes, ctype: str) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    response = await client.post("/v1/txs", data=body, headers=headers)
    assert 400 <= response.status < 500
    await assert_client_error(response)


@FUZZ
@given(
    doc=json_values
    | st.fixed_dictionaries({"tx": json_values})
    | st.fixed_dictionaries({"txs": st.lists(json_values | hexish, max_size=4)})
)
async def test_random_json_to_submit(client: Client, doc: object) -> None:
    response = await client.post(
        "/v1/txs", data=json.dumps(doc), headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status < 500
    await assert_client_error(response)


@FUZZ
@given(
    doc=canonical_values
    | st.fixed_dictionaries({"txs": st.lists(canonical_values, max_size=3)})
    | st.fixed_dictionaries({"tx": st.binary(max_size=200)})
)
async def test_random_msgpack_to_submit(client: Client, doc: object) -> None:
    response = await client.post(
        "/v1/txs", data=encode(doc), headers={"Content-Type": "application/msgpack"}
    )
    assert 400 <= response.status < 500
    await assert_client_error(response)


@FUZZ
@given(
    template=st.sampled_from(
        [
            "/v1/txs/{}",
            "/v1/blocks/{}",
            "/v1/blocks/{}/certificate",
            "/v1/state/{}",
            "/v1/log/inclusion/{}",
            "/v1/shipments/{}",
            "/v1/permits/{}",
            "/v1/permits/{}/validity",
            "/v1/energy/accounts/{}",
            "/v1/energy/market/{}",
            "/v1/orgs/{}",
        ]
    ),
    value=segment | hexish.filter(bool),
    query=st.dictionaries(
        st.sampled_from(
            [
                "height",
                "at",
                "old",
                "new",
                "size",
                "limit",
                "after",
                "party",
                "container",
                "status",
                "holder",
                "address",
                "interval",
            ]
        ),
        st.text(max_size=25),
        max_size=3,
    ),
)
async def test_random_paths_and_queries(
    client: Client, template: str, value: str, query: dict[str, str]
) -> None:
    response = await client.get(template.format(value), params=query)
    await assert_client_error(response)


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(
            [
                "container",
                "party",
                "status",
                "holder",
                "address",
                "limit",
                "after",
                "old",
                "new",
                "height",
            ]
        ),
        st.text(max_size=25),
        max_size=4,
    ),
    path=st.sampled_from(["/v1/shipments", "/v1/permits", "/v1/orgs", "/v1/log/consistency"]),
)
async def test_random_searches(client: Client, path: str, query: dict[str, str]) -> None:
    response = await client.get(path, params=query)
    await assert_client_error(response)


@FUZZ
@given(
    key=st.one_of(st.none(), hexish, st.just("00" * 32)),
    time=st.one_of(st.none(), st.text(max_size=22), st.integers(0, 2**70).map(str)),
    sig=st.one_of(st.none(), hexish, st.just("00" * 64)),
)
async def test_random_auth_headers(
    client: Client, key: str | None, time: str | None, sig: str | None
) -> None:
    headers = {
        name: value
        for name, value in ((KEY_HEADER, key), (TIME_HEADER, time), (SIGNATURE_HEADER, sig))
        if value is not None and value.isprintable()
    }
    response = await client.get("/v1/shipments/S-2024-0001", headers=headers)
    assert response.status in (401, 403)
    await assert_client_error(response)


@FUZZ
@given(frame=st.binary(max_size=100) | st.text(max_size=100))
async def test_random_subscriptions(client: Client, frame: bytes | str) -> None:
    async with client.ws_connect("/v1/events") as ws:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        reply = await ws.receive_json(timeout=5)
        assert reply["type"] in ("error", "subscribed")

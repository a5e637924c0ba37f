"""Content negotiation and the two renderings of one canonical value."""

from __future__ import annotations

import json

import pytest

from ledger.encoding import decode, to_json_value
from node.api.render import Format, negotiate, render_body
from tests.unit.node.api.conftest import Client


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        (None, Format.JSON),
        ("", Format.JSON),
        ("*/*", Format.JSON),
        ("application/json", Format.JSON),
        ("application/msgpack", Format.MSGPACK),
        ("application/x-msgpack", Format.MSGPACK),
        ("Application/MsgPack", Format.MSGPACK),
        ("application/msgpack, application/json", Format.MSGPACK),
        ("application/json, application/msgpack", Format.JSON),
        ("application/json;q=0.5, application/msgpack", Format.MSGPACK),
        ("application/msgpack;q=0.1, application/json", Format.JSON),
        ("application/msgpack;q=0", Format.JSON),
        ("application/msgpack;q=abc", Format.JSON),
        ("text/html", Format.JSON),
        (";;;,,,", Format.JSON),
    ],
)
def test_negotiate(accept: str | None, fmt: Format) -> None:
    assert negotiate(accept) is fmt


def test_json_form_of_canonical_values() -> None:
    value = {"b": b"\x00\xff", "n": None, "t": True, "l": (1, [b"\x01"]), "s": "é"}
    assert to_json_value(value) == {"b": "00ff", "n": None, "t": True, "l": [1, ["01"]], "s": "é"}
    assert json.loads(render_body(value, Format.JSON)) == to_json_value(value)


def test_msgpack_form_is_canonical() -> None:
    value = {"z": 1, "a": [b"\x01", None]}
    assert decode(render_body(value, Format.MSGPACK)) == value


@pytest.mark.parametrize("bad", [1.5, {1: "x"}, {"a": object()}, {"s": {1, 2}}])
def test_non_canonical_values_are_our_bug(bad: object) -> None:
    with pytest.raises(TypeError):
        to_json_value(bad)


async def test_every_get_answer_decodes_strictly_as_msgpack(client: Client) -> None:
    for path in (
        "/v1/status",
        "/v1/validators",
        "/v1/evidence",
        "/v1/checkpoint",
        "/v1/blocks/latest",
        "/v1/blocks/1/certificate",
        "/v1/log/consistency?old=0",
        "/v1/log/inclusion/3",
        "/v1/permits/P-0001",
        "/v1/orgs/acme",
        "/healthz",
        "/v1/blocks/404",
    ):
        response = await client.get(path, headers={"Accept": "application/msgpack"})
        assert response.content_type == "application/msgpack", path
        assert response.headers["Vary"] == "Accept"
        assert isinstance(decode(await response.read()), dict), path

"""The node serves the explorer: pages and scripts from a fixed list with a strict
Content-Security-Policy, the genesis whose bytes hash to the chain's genesis hash, and
each permit's QR code."""

from __future__ import annotations

from hashlib import sha256
from string import Template

import pytest

from ledger.genesis import Genesis
from node.api.explorer_link import qr_svg
from node.api.routes_explorer import FILES, SHELL, _page
from tests.unit.node.api.conftest import PERMIT, Client, TestNode, assert_error


async def test_genesis_bytes_hash_to_the_genesis_hash(client: Client, node: TestNode) -> None:
    response = await client.get("/v1/genesis", headers={"Accept": "application/msgpack"})
    body = await response.read()
    assert sha256(body).digest() == node.genesis.hash
    json_form = await (await client.get("/v1/genesis")).json()
    assert json_form["chain_id"] == node.genesis.chain_id
    assert Genesis.from_obj(node.genesis.to_obj()).hash == node.genesis.hash


async def test_permit_page_is_served_with_a_strict_policy(client: Client) -> None:
    response = await client.get(f"/explorer/permits/{PERMIT}?genesis={'ab' * 32}")
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert 'id="verdict"' in await response.text()


@pytest.mark.parametrize("page", ["index", "chain", "market", "permit"])
def test_each_page_is_whole_in_the_shell_with_its_own_script(page: str) -> None:
    html = FILES[f"{page}.html"][0].decode()
    assert html.startswith("<!doctype html>\n") and html.endswith("</body>\n</html>\n")
    assert html.count("<script") == 1
    assert f'<script type="module" src="/explorer/static/{page}.mjs"></script>' in html
    assert html.count("<title>") == 1 and "CityLedger explorer</title>" in html
    assert "$" not in html  # every placeholder of the shell filled
    assert SHELL not in FILES  # the shell is no page of its own


def test_a_page_without_its_title_line_is_refused() -> None:
    with pytest.raises(ValueError, match="first line must be its <title>"):
        _page(Template("$title $script $body"), "x.html", "<header>x</header>\n")


async def test_scripts_are_javascript_modules(client: Client) -> None:
    for name in ("verify.mjs", "msgpack.mjs", "permit.mjs", "page.mjs"):
        response = await client.get(f"/explorer/static/{name}")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert await response.read() == FILES[name][0]


async def test_nothing_outside_the_list_is_served(client: Client) -> None:
    for path in (
        "/explorer/static/..%2F..%2Fapp.py",
        "/explorer/static/routes_explorer.py",
        "/explorer/static/nope.mjs",
        "/explorer/nowhere",
    ):
        response = await client.get(path)
        await assert_error(response, 404, "not_found")
    response = await client.get("/explorer/permits/bad%20id")
    assert response.status == 400


async def test_permit_qr_opens_the_page_at_the_origin_given(client: Client, node: TestNode) -> None:
    """The page passes the origin it was opened at (an https proxy's, say): the code is
    that of the page there; without it, of the address the request came to."""
    origin = "https://permits.example.org:8443"
    response = await client.get(f"/explorer/permits/{PERMIT}/qr.svg", params={"origin": origin})
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    assert await response.read() == qr_svg(origin, PERMIT, node.genesis.hash)
    plain = await client.get(f"/explorer/permits/{PERMIT}/qr.svg")
    here = f"http://{client.server.host}:{client.server.port}"
    assert await plain.read() == qr_svg(here, PERMIT, node.genesis.hash)
    for bad in ("javascript:alert(1)", "https://x.org/path", "ftp://x.org", "https://a b"):
        response = await client.get(f"/explorer/permits/{PERMIT}/qr.svg", params={"origin": bad})
        assert response.status == 400, bad

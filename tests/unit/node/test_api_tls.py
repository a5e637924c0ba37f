"""The API over HTTPS with the node's TLS certificate, and the CLI pinning it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from cli.client import NodeClient, NodeError, certificate_pin, parse_pin
from ledger.crypto import PrivateKey
from ledger.encoding import encode
from node.link_identity import fingerprint
from node.listen import start_site
from node.tls import LinkTLS, cert_pem

KEY = PrivateKey.from_label("api-tls-node")


async def _status(request: web.Request) -> web.Response:
    body = encode({"chain_id": "api-tls", "public_key": KEY.public_key})
    return web.Response(body=body, content_type="application/msgpack")


@pytest.fixture
async def https_node() -> AsyncIterator[tuple[str, LinkTLS]]:
    tls = LinkTLS.ephemeral(KEY, [KEY.public_key])
    app = web.Application()
    app.router.add_get("/v1/status", _status)
    runner = await start_site(app, "127.0.0.1:0", ssl_context=tls.api)
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", tls
    finally:
        await runner.cleanup()


async def test_the_pinned_certificate_is_accepted(https_node: tuple[str, LinkTLS]) -> None:
    url, tls = https_node
    client = NodeClient(url, pin=fingerprint(tls.cert))
    assert await asyncio.to_thread(lambda: client.chain_id) == "api-tls"
    client.close()


async def test_another_certificate_is_refused_before_anything_is_sent(
    https_node: tuple[str, LinkTLS],
) -> None:
    url, tls = https_node
    other = LinkTLS.ephemeral(KEY, [KEY.public_key])  # same validator, another TLS key
    client = NodeClient(url, pin=fingerprint(other.cert))
    with pytest.raises(NodeError, match="not the pinned sha256:") as refused:
        await asyncio.to_thread(lambda: client.chain_id)
    assert fingerprint(tls.cert).hex() in refused.value.message


async def test_without_a_pin_the_nodes_certificate_is_not_trusted(
    https_node: tuple[str, LinkTLS],
) -> None:
    url, _ = https_node
    client = NodeClient(url, pin=None)
    client.pin = None  # whatever the command line of this process pinned
    with pytest.raises(NodeError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await asyncio.to_thread(lambda: client.chain_id)


def test_pins_are_read_from_text_and_certificate_files(tmp_path: Path) -> None:
    tls = LinkTLS.ephemeral(KEY, [KEY.public_key])
    cert = tmp_path / "tls_cert.pem"
    cert.write_bytes(cert_pem(tls.cert))
    assert certificate_pin(str(cert)) == fingerprint(tls.cert)
    assert parse_pin("sha256:" + fingerprint(tls.cert).hex()) == fingerprint(tls.cert)
    for bad in ("sha256:zz", "sha256:" + "00" * 31, ""):
        with pytest.raises(NodeError, match="a pin is sha256: and 64 hex digits"):
            parse_pin(bad)
    cert.write_text("not a certificate")
    with pytest.raises(NodeError, match="not a readable PEM certificate"):
        certificate_pin(str(cert))

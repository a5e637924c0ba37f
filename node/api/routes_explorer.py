"""The explorer: static pages under ``/explorer/`` whose scripts verify in the browser.

The node serves files only (node/api/explorer/, read once at start-up, a fixed list:
no path from a request ever reaches the file system); the pages fetch the public
``/v1`` answers in msgpack and check certificates and proofs themselves with WebCrypto
(docs/explorer.md). So the pages show what an unsigned reader may see, no more: they
send no signature. ``GET /v1/genesis`` gives them the genesis whose hash the page's
link names. Every page answer carries a Content-Security-Policy that lets scripts,
styles and fetches come from this node only.
"""

from __future__ import annotations

import re
from importlib import resources
from string import Template

from aiohttp import web

from contracts import codes
from node.api.context import api_state
from node.api.errors import APIError
from node.api.explorer_link import qr_svg
from node.api.params import path_id
from node.api.render import render

routes = web.RouteTableDef()
ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?"
)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
SHELL = "shell.html"  # the head and frame of every page, not served itself


def _load() -> dict[str, tuple[bytes, str]]:
    """Every file of the explorer directory with a known type, by name; each page
    (``<name>.html``) put in the one shell all pages share (:func:`_page`)."""
    folder = resources.files("node.api").joinpath("explorer")
    shell = Template(folder.joinpath(SHELL).read_text(encoding="utf-8"))
    out: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if not entry.is_file() or suffix not in _TYPES or entry.name == SHELL:
            continue
        body = entry.read_bytes()
        if suffix == ".html":
            body = _page(shell, entry.name, body.decode("utf-8"))
        out[entry.name] = (body, _TYPES[suffix])
    return out


def _page(shell: Template, name: str, source: str) -> bytes:
    """Page ``name`` whole: its file holds its ``<title>`` line and its body; the shell
    adds the head every page has (the style sheet, and the page's own script
    ``<name>.mjs``, the only one it loads: the scripts it imports come from there)."""
    title, _, body = source.partition("\n")
    if not (title.startswith("<title>") and title.endswith("</title>")):
        raise ValueError(f"explorer page {name}: the first line must be its <title>")
    script = name.removesuffix(".html") + ".mjs"
    return shell.substitute(title=title, script=script, body=body).encode("utf-8")


FILES = _load()
PAGES = {  # /explorer/<page>: each script reads its page's name from the path
    "chain": "chain.html",
    "blocks": "chain.html",
    "validators": "chain.html",
    "checkpoints": "chain.html",
    "market": "market.html",
}


def _file(name: str) -> web.Response:
    if name not in FILES:
        raise APIError(404, "not_found", f"no explorer file {name[:80]!r}")
    body, content_type = FILES[name]
    response = web.Response(body=body, headers=SECURITY_HEADERS)
    response.headers["Content-Type"] = content_type
    return response


@routes.get("/v1/genesis")
async def genesis(request: web.Request) -> web.StreamResponse:
    """The genesis body; its canonical msgpack bytes hash to the chain's genesis hash."""
    return render(request, api_state(request).node.genesis.to_obj())


@routes.get("/explorer")
async def explorer_root(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": "/explorer/"})


@routes.get("/explorer/")
async def index(request: web.Request) -> web.StreamResponse:
    return _file("index.html")


@routes.get("/explorer/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    return _file(request.match_info["name"])


@routes.get("/explorer/permits/{id}")
async def permit_page(request: web.Request) -> web.StreamResponse:
    """One page for every permit: its script reads the id and the genesis from the URL."""
    path_id(request, "id", codes.is_record_id, "a permit id")
    return _file("permit.html")


@routes.get("/explorer/permits/{id}/qr.svg")
async def permit_qr(request: web.Request) -> web.StreamResponse:
    """The QR code of the permit's page at ``?origin=`` (the page passes the origin it was
    opened at, which behind an https reverse proxy is not the one this node sees), else at
    the address the request came to."""
    permit_id = path_id(request, "id", codes.is_record_id, "a permit id")
    node = api_state(request).node
    origin = request.query.get("origin", f"{request.scheme}://{request.host}")
    if not ORIGIN.fullmatch(origin):
        raise APIError(400, "malformed", "origin must be http(s)://host[:port]")
    body = qr_svg(origin, permit_id, node.genesis.hash)
    return web.Response(body=body, content_type="image/svg+xml", headers=SECURITY_HEADERS)


@routes.get("/explorer/{page}")
async def chain_page(request: web.Request) -> web.StreamResponse:
    page = request.match_info["page"]
    if page not in PAGES:
        raise APIError(404, "not_found", f"no explorer page {page[:80]!r}")
    return _file(PAGES[page])

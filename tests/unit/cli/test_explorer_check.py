"""``cityledger explorer check``: a node serving this release's explorer files passes; one
that serves a script of its own is named, with the file, and the exit status is 1."""

from __future__ import annotations

from aiohttp import web

from node.api.routes_explorer import FILES
from tests.unit.cli.kit import ServerThread, message, run


def test_the_node_serves_this_releases_files(server: ServerThread) -> None:
    result = run(["explorer", "check", "--node", server.url])
    assert result.exit_code == 0, message(result)
    assert result.output.count("same") == len(FILES)
    assert "is this release's" in result.output


def test_a_node_serving_another_script_is_named() -> None:
    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = FILES[name][0]
        if name == "verify.mjs":  # a node that makes every answer 'verified'
            body = body.replace(b"verified: false", b"verified: true")
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/explorer/static/{name}", static)
    liar = ServerThread(app).start()
    try:
        result = run(["explorer", "check", "--node", liar.url])
    finally:
        liar.stop()
    assert result.exit_code == 1
    assert "DIFFERENT" in result.output and "other than this release's: verify.mjs" in result.output

"""A scripted HTTP server on the loopback, for the tests of clients: every POST is
answered by a function of its body."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What a POST is answered with: the status, the body and the headers to send.
Answer = tuple[int, bytes, dict[str, str]]


@contextmanager
def scripted_server(answer: Callable[[bytes], Answer]) -> Iterator[str]:
    """Serve on 127.0.0.1 until the block ends; yields ``host:port``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status, data, headers = answer(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()

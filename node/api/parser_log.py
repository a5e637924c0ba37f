"""One quiet log line, not an ERROR with a traceback, per malformed request.

aiohttp answers a request it cannot parse (a request line over 8190 bytes, a bad
header, a bad method) with 400 and logs ``Error handling request`` with the whole
traceback at ERROR on ``aiohttp.server``: anyone could fill a node's log at line
rate. :func:`quiet_parser_errors` installs a filter on that logger that turns
those records into one DEBUG line on ``cityledger.api``; every other record
(a real error) passes unchanged.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"
log = logging.getLogger("cityledger.api")


class ParserErrorFilter(logging.Filter):
    """Drops records caused by a client's malformed HTTP, logging one DEBUG line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        reason = " ".join(str(exc).split())[:200]
        log.debug("malformed request from %s: %s: %s", remote, type(exc).__name__, reason)
        return False


def quiet_parser_errors() -> None:
    """Install :class:`ParserErrorFilter` on aiohttp's server logger (once)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, ParserErrorFilter) for f in logger.filters):
        logger.addFilter(ParserErrorFilter())

"""The API's error answer, apart from its rendering (:mod:`node.api.render`), so that the
request signing the CLI shares with the node (:mod:`node.api.auth`) does not import the
web server."""

from __future__ import annotations

from collections.abc import Mapping

from ledger.errors import LedgerError


class APIError(LedgerError):
    """An answer other than success, with its HTTP status and stable ``code``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.headers = dict(headers or {})

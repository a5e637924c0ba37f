"""The node's HTTP API (docs/api.md): ``make_app`` in :mod:`node.api.app`.

Kept import-free so that clients (the CLI) can import :mod:`node.api.auth`
and :mod:`node.api.render` without pulling in the server side.
"""

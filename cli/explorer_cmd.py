"""``cityledger explorer check``: are the explorer's scripts the ones this release ships?

The explorer's pages verify what a node says, but their scripts come from that same node
(docs/explorer.md, "What it cannot check"): a node that serves a script of its own can
make a page say anything. This command fetches every explorer file the node serves and
compares its SHA-256 with the copy installed with this CLI (the same release), so a
careful user, or a city's monitoring, learns when a node serves different code.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request

import click

from cli.client import DEFAULT_NODE
from cli.output import console, fail
from node.api.routes_explorer import FILES

MAX_FILE = 4 * 1024 * 1024
TIMEOUT_S = 10.0


def served(base: str, name: str) -> bytes:
    """The bytes ``base`` serves as ``/explorer/static/<name>``."""
    url = f"{base.rstrip('/')}/explorer/static/{name}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return bytes(response.read(MAX_FILE + 1))
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}".encode()
    except (urllib.error.URLError, OSError) as exc:
        fail(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}")


@click.group()
def explorer() -> None:
    """The explorer pages every node serves at /explorer/."""


@explorer.command()
@click.option("--node", default=DEFAULT_NODE, show_default=True, envvar="CITYLEDGER_NODE",
              help="API URL of the node whose pages to check. Env: CITYLEDGER_NODE.")  # fmt: skip
def check(node: str) -> None:
    """Compare every explorer file the node serves with this release's (SHA-256).
    Exit 0 when all are the same, 1 when any differs."""
    if not node.startswith(("http://", "https://")):
        fail(f"--node must be an http(s) URL like {DEFAULT_NODE}, got {node!r}")
    differ = []
    for name in sorted(FILES):
        ours = hashlib.sha256(FILES[name][0]).hexdigest()
        theirs = hashlib.sha256(served(node, name)).hexdigest()
        same = ours == theirs
        if not same:
            differ.append(name)
        mark = "[green]same[/]" if same else f"[bold red]DIFFERENT[/] (served {theirs[:16]}…)"
        console.print(f"{name:<14} {ours}  {mark}", highlight=False, soft_wrap=True)
    if differ:
        fail(f"{node} serves explorer files other than this release's: {', '.join(differ)}")
    console.print(f"every explorer file {node} serves is this release's", highlight=False)

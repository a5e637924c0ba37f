"""The explorer link of a permit and its QR code: what a city prints on the site notice.

The link carries the chain's genesis hash, so the page it opens refuses a node of
another chain (docs/explorer.md). ``cityledger permit qr`` and the permit page's
``qr.svg`` make the code with segno (pure Python, SVG and PNG, no native code).
"""

from __future__ import annotations

import io
import urllib.parse

import segno

QR_ERROR = "m"  # medium error correction (15 %): survives a smudged or weathered notice


def permit_page_url(base_url: str, permit_id: str, genesis_hash: bytes) -> str:
    """``<base>/explorer/permits/<id>?genesis=<hex>``: the page that verifies the permit."""
    base = base_url.rstrip("/")
    quoted = urllib.parse.quote(permit_id, safe="")
    return f"{base}/explorer/permits/{quoted}?genesis={genesis_hash.hex()}"


def qr_code(url: str) -> segno.QRCode:
    return segno.make(url, error=QR_ERROR, micro=False)


def qr_svg(base_url: str, permit_id: str, genesis_hash: bytes) -> bytes:
    """The SVG of the QR code of the permit's page."""
    return qr_bytes(permit_page_url(base_url, permit_id, genesis_hash), "svg")


def qr_bytes(url: str, kind: str) -> bytes:
    """The QR code of ``url`` as ``kind`` ("svg" or "png"): 4 px modules, the standard
    quiet zone of 4 modules (scanners need it)."""
    out = io.BytesIO()
    options: dict[str, object] = {"xmldecl": False, "title": "permit page"} if kind == "svg" else {}
    qr_code(url).save(out, kind=kind, scale=4, border=4, **options)
    return out.getvalue()

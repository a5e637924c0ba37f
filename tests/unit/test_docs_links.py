"""Every relative link in the README and docs/ points at a file that exists and, when it
names a section (``file.md#section``), at a heading that exists (GitHub's anchor rules)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^(```|~~~)")


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def prose_lines(path: Path) -> list[str]:
    """The lines outside fenced code blocks (whose brackets are code, not links)."""
    out, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path):
        match = HEADING.match(line)
        if match:
            base = anchor(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links() -> list[str]:
    broken = []
    for doc in documents():
        for line in prose_lines(doc):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto: ...
                file_part, _, section = target.partition("#")
                path = (doc.parent / file_part).resolve() if file_part else doc
                where = f"{doc.relative_to(REPO)}: ({target})"
                if not path.exists():
                    broken.append(f"{where}: no such file")
                elif section and path.suffix == ".md" and section not in anchors(path):
                    broken.append(f"{where}: no heading with that anchor")
    return broken


def test_the_anchor_rule_matches_githubs() -> None:
    assert anchor("Founding a network") == "founding-a-network"
    assert anchor("What 'verified' means") == "what-verified-means"
    assert anchor("`audit verify --home`: offline") == "audit-verify---home-offline"


def test_every_relative_link_in_the_docs_resolves() -> None:
    assert broken_links() == []

"""Names resolved to organisations, completely: the whole proven directory, matched here.

A customs officer types a name ("Hanjin"), not an organisation id. A node that
resolved names itself could leave out the organisation that matters, or answer
with another one; so the node only serves the organisation directory
(``GET /v1/orgs``, the ``org-directory`` bucket of
:mod:`contracts.search_buckets`), page by page, each page checked complete by
:func:`lightclient.search.verify_org_directory`, and the client matches names
over *all* of it. :func:`whole_directory` checks that the pages it is given are
the whole directory at one height; :func:`name_matches` is the one matching rule:

* a **case-insensitive substring** of the organisation's name: both sides are
  Unicode-normalised (NFKC), case-folded and their runs of white space made one
  space, so ``hanjin``, ``HANJIN`` and ``Hanjin  Shipping`` all find
  "Hanjin Shipping Co., Ltd."; punctuation is kept, ids are not searched (an id is
  given with ``--party``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.identity_records import Organisation
from lightclient.errors import VerificationError
from lightclient.search import SearchView

MATCH_RULE = "case-insensitive substring of the name"


def name_key(text: str) -> str:
    """``text`` as names are compared: NFKC, case-folded, white space collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def name_matches(org: Organisation, text: str) -> bool:
    """Whether ``text`` (non-empty once normalised) is part of ``org``'s name."""
    wanted = name_key(text)
    return bool(wanted) and wanted in name_key(org.name)


@dataclass(frozen=True, slots=True)
class Directory:
    """Every organisation at one certified height, in directory order."""

    height: int
    organisations: tuple[Organisation, ...]

    def matching(self, text: str) -> tuple[Organisation, ...]:
        """The organisations whose name ``text`` matches (:func:`name_matches`)."""
        return tuple(o for o in self.organisations if name_matches(o, text))


def whole_directory(pages: Sequence[SearchView[Organisation]]) -> Directory:
    """The directory made of ``pages``, each already verified: they must come from one
    certified block, follow one another from slot 0, and end at the proven count."""
    if not pages:
        raise VerificationError("the organisation directory: no page was read")
    block = pages[0].certified.header.hash
    expected_start = 0
    found: dict[str, Organisation] = {}
    for page in pages:
        count = page.page.count
        if page.certified.header.hash != block:
            raise VerificationError(
                "the organisation directory's pages come from different blocks "
                f"(heights {pages[0].certified.height} and {page.certified.height})"
            )
        if count.start != expected_start:
            raise VerificationError(
                f"the organisation directory: a page starts at slot {count.start}, "
                f"the one before ended at {expected_start} (a page skipped)"
            )
        expected_start = count.start + count.proven
        for org in page.found:
            if org.id in found:
                raise VerificationError(f"organisation {org.id!r} is listed twice")
            found[org.id] = org
    last = pages[-1].page.count
    if expected_start != last.total or len(found) != last.total:
        raise VerificationError(
            f"the organisation directory holds {last.total} organisations, "
            f"{len(found)} were read (an organisation or a page left out)"
        )
    return Directory(pages[0].certified.height, tuple(found.values()))

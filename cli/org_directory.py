"""The organisation directory read whole, and names resolved against it.

``org find`` and ``shipment find --consignor-name/--consignee-name/--party-name``
resolve a name the same way: every page of ``GET /v1/orgs`` at one certified
height, each checked complete (:func:`lightclient.search.verify_org_directory`),
put together by :func:`lightclient.orgs.whole_directory` (consecutive, one block,
as many as the proven count), then matched here with the light client's one
rule (:data:`lightclient.orgs.MATCH_RULE`). A node can neither hide an
organisation whose name matches nor pass another one off in its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cli.output import fail
from cli.tabular import Column, Listing
from cli.verified_reads import Reads
from contracts.identity_records import Organisation
from lightclient.answers import Verified
from lightclient.orgs import MATCH_RULE, Directory, name_key, whole_directory
from lightclient.search import Paging, SearchView, verify_org_directory

PAGE = 1000
MAX_PAGES = 100  # 100,000 organisations: far beyond any city's register

ORGS: Listing[Organisation] = Listing(
    [
        Column("org", "organisation", lambda o: o.id),
        Column("name", "name", lambda o: o.name),
        Column("kind", "kind", lambda o: o.kind),
        Column("city", "city", lambda o: o.city),
        Column("founding", "founding", lambda o: "yes" if o.founding else "no"),
    ]
)


def directory_page(
    reads: Reads, start: int, height: int | None
) -> Verified[SearchView[Organisation]]:
    """One verified page of the directory from slot ``start`` (at ``height``, or now)."""
    params = {"limit": PAGE, "after": start or None, "height": height}
    answer = reads.client.get("/v1/orgs", params)
    return reads.accept(
        lambda: verify_org_directory(answer, reads.genesis, Paging(start, PAGE)),
        reads.now_or_at(height),
    )


def read_directory(reads: Reads, height: int | None) -> tuple[Verified[Any], Directory]:
    """Every organisation, at ``height`` (default: the latest, fresh): the first page's
    verified answer (its block and freshness) and the whole directory."""
    pages = [directory_page(reads, 0, height)]
    for _ in range(MAX_PAGES):
        after = pages[-1].view.page.count.next_after
        if after is None:
            return pages[0], whole_directory([p.view for p in pages])
        pages.append(directory_page(reads, after, pages[0].height))
    fail(f"the organisation directory holds over {MAX_PAGES * PAGE} organisations")


def checked_name(text: str, option: str) -> str:
    """A name to search for: something left once white space is collapsed."""
    if not name_key(text):
        fail(f"{option}: give part of an organisation's name (it is empty)")
    return text


def describe_matches(
    text: str, matched: Sequence[Organisation], directory: Directory, *, listed: bool = False
) -> str:
    """What ``text`` matched, and that the directory was read whole: the matches named
    (``a (A), b (B)``) unless ``listed`` (a table shows them)."""
    n, height = len(directory.organisations), directory.height
    whole = f"the directory of all {n} organisations is proven complete at height {height}"
    if not matched:
        return (
            f"no organisation's name contains {text!r} ({MATCH_RULE}); {whole}, so none is left out"
        )
    if listed:
        return f"{len(matched)} of {n} organisations match {text!r} ({MATCH_RULE}); {whole}"
    names = ", ".join(f"{o.id} ({o.name})" for o in matched)
    noun = "organisation's name contains" if len(matched) == 1 else "organisations' names contain"
    return f"{len(matched)} {noun} {text!r} ({MATCH_RULE}): {names}; {whole}"


def org_json(org: Organisation) -> dict[str, Any]:
    """The fields a name search shows (the proven record has its member keys too)."""
    return {"id": org.id, "name": org.name, "kind": org.kind, "city": org.city,
            "founding": org.founding}  # fmt: skip

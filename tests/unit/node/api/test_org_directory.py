"""``GET /v1/orgs``: the organisation directory, public, paged, and checked whole by the
light client (:func:`lightclient.search.verify_org_directory`, then
:func:`lightclient.orgs.whole_directory`): a node that leaves an organisation out,
skips a page, mixes heights or serves another organisation's record is caught."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.identity_records import Organisation
from ledger.encoding import decode
from lightclient.answers import check_whole
from lightclient.errors import VerificationError
from lightclient.orgs import whole_directory
from lightclient.search import Paging, SearchView, verify_org_directory
from node.api.context import API_STATE
from tests.unit.node.api.conftest import MSGPACK, ORGS, Client, TestNode, get_obj, key

PAGE = 4


async def _page(
    client: Client, node: TestNode, start: int, height: int | None = None
) -> SearchView[Organisation]:
    path = f"/v1/orgs?limit={PAGE}&after={start}" + (f"&height={height}" if height else "")
    status, answer = await get_obj(client, path)  # unsigned: organisations are public
    assert status == 200, answer
    view = verify_org_directory(answer, node.genesis, Paging(start, PAGE))
    check_whole(view.page.count)
    return view


async def _all_pages(client: Client, node: TestNode) -> list[SearchView[Organisation]]:
    pages = [await _page(client, node, 0)]
    while (after := pages[-1].page.count.next_after) is not None:
        pages.append(await _page(client, node, after, pages[0].certified.height))
    return pages


async def test_the_directory_read_page_by_page_is_every_organisation(
    client: Client, node: TestNode
) -> None:
    pages = await _all_pages(client, node)
    assert len(pages) == 3  # 10 organisations, 4 a page
    directory = whole_directory(pages)
    assert [o.id for o in directory.organisations] == list(ORGS)
    assert [o.id for o in directory.matching("COOP")] == ["solar-coop", "wind-coop"]
    assert directory.matching("nobody") == ()


async def test_pages_put_together_wrongly_are_refused(client: Client, node: TestNode) -> None:
    p0, p1, p2 = await _all_pages(client, node)
    with pytest.raises(VerificationError, match="a page skipped"):
        whole_directory([p0, p2])
    with pytest.raises(VerificationError, match="holds 10 organisations, 8 were read"):
        whole_directory([p0, p1])
    with pytest.raises(VerificationError, match="no page was read"):
        whole_directory([])


async def test_pages_from_two_heights_are_refused(client: Client, node: TestNode) -> None:
    """Page 1 before an organisation registers, the rest after: not one directory."""
    first = await _page(client, node, 0)
    admin = {"public_key": key("newco-admin").public_key, "name": "a", "roles": ["admin"]}
    payload = {"id": "newco", "name": "New Co", "kind": "trader", "city": "Rotterdam",
               "members": [admin]}  # fmt: skip
    node.commit([node.tx("customs-admin", "identity.register_org", payload)])
    later = [await _page(client, node, s) for s in (4, 8)]
    with pytest.raises(VerificationError, match="come from different blocks"):
        whole_directory([first, *later])
    fresh = await _all_pages(client, node)
    assert whole_directory(fresh).organisations[-1].id == "newco"


async def _answer(client: Client, start: int = 0) -> Any:
    status, answer = await get_obj(client, f"/v1/orgs?limit={PAGE}&after={start}")
    assert status == 200
    return answer


async def test_an_organisation_left_out_is_refused(client: Client, node: TestNode) -> None:
    answer = await _answer(client)
    del answer["slots"][1]
    with pytest.raises(VerificationError, match="is not where it belongs"):
        verify_org_directory(answer, node.genesis, Paging(0, PAGE))
    last = await _answer(client, 8)
    last["slots"] = last["slots"][:-1]  # the last organisation: the page comes up short
    view = verify_org_directory(last, node.genesis, Paging(8, PAGE))
    with pytest.raises(VerificationError, match="must hold 2, it holds 1"):
        check_whole(view.page.count)


async def test_another_organisations_record_is_refused(client: Client, node: TestNode) -> None:
    answer = await _answer(client)
    answer["slots"][0]["member"] = answer["slots"][1]["member"]  # proven, at another key
    with pytest.raises(VerificationError, match="the node sent the record of another key"):
        verify_org_directory(answer, node.genesis, Paging(0, PAGE))
    answer = await _answer(client)
    answer["slots"][0]["member"]["record"]["name"] = "Someone Else"
    with pytest.raises(VerificationError, match="forged record"):
        verify_org_directory(answer, node.genesis, Paging(0, PAGE))


async def test_directory_parameters(client: Client) -> None:
    for query in ("limit=0", "limit=1001", "after=-1", "after=x", "height=0", "limit=1&limit=2"):
        response = await client.get(f"/v1/orgs?{query}")
        assert response.status == 400, query
    assert (await client.get("/v1/orgs?height=999")).status == 404
    status, answer = await get_obj(client, "/v1/orgs?after=50")
    assert status == 200 and answer["slots"] == [] and answer["next_after"] is None


async def test_a_page_is_rendered_once_per_height(client: Client, node: TestNode) -> None:
    """Every reader gets the same bytes for a page at a height: the second ask is served
    from the public answer cache, and a new block gives a new page."""
    cache = client.app[API_STATE].public_answers
    first = await client.get("/v1/orgs?limit=3", headers=MSGPACK)
    cached = len(cache)
    assert cached == 1
    again = await client.get("/v1/orgs?limit=3", headers=MSGPACK)
    assert await again.read() == await first.read() and len(cache) == cached
    json_page = await client.get("/v1/orgs?limit=3")
    assert json_page.content_type == "application/json" and len(cache) == cached + 1
    node.commit([])
    later = await client.get("/v1/orgs?limit=3", headers=MSGPACK)
    assert decode(await later.read())["height"] == node.chain.head().height

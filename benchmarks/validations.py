"""How the timed phase's proposals were validated: with the execution a validator made
ahead from the proposer's announced body, or executed when they came. Each node's
``/v1/status`` ``consensus.validations`` (node/status.py), read before and after and
added up over the nodes; nothing for nodes that do not execute ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import aiohttp

from node.executor import AHEAD, EXECUTED

PATHS = (AHEAD, EXECUTED)


async def validation_totals(http: aiohttp.ClientSession, urls: Sequence[str]) -> dict[str, int]:
    """Every node's validations by path, added up (a node that does not answer: none)."""
    return totals_of(await asyncio.gather(*(_status(http, url) for url in urls)))


def totals_of(docs: Sequence[Mapping[str, object]]) -> dict[str, int]:
    """The validations by path in these ``/v1/status`` answers, added up."""
    totals = dict.fromkeys(PATHS, 0)
    for doc in docs:
        consensus = doc.get("consensus")
        counts = consensus.get("validations") if isinstance(consensus, dict) else None
        if isinstance(counts, dict):
            for path in PATHS:
                n = counts.get(path)
                totals[path] += n if isinstance(n, int) else 0
    return totals


def validation_figures(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """The validations of each path between the two reads (empty when there were none)."""
    spent = {path: after.get(path, 0) - before.get(path, 0) for path in PATHS}
    return spent if any(spent.values()) else {}


async def _status(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    try:
        async with http.get(f"{url}/v1/status", timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status != 200:
                return {}
            doc = await resp.json()
            return doc if isinstance(doc, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {}

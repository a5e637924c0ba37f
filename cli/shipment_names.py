"""``shipment find --consignor-name/--consignee-name/--party-name``: parties by name.

An officer types a name, not an organisation id. Each name is resolved against
the whole organisation directory, proven complete at one height
(:mod:`cli.org_directory`): every organisation whose name contains it
(:data:`lightclient.orgs.MATCH_RULE`). The shipments are then the union of the
matching organisations' party searches (``shipment-party`` buckets, with any
other filter given), each read whole and proven complete at that same height,
kept when the organisation is in the role asked: consignor, consignee, or any
party or holder (``--party-name``, as ``--party``). With several names, the
name matching the fewest organisations is walked and the others checked on each
proven record. A name that matches nobody is said so, with the directory's
proof; more than :data:`MAX_ORGS` matches is refused (name one more precisely).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cli.org_directory import checked_name, describe_matches, org_json, read_directory
from cli.output import fail, print_json, record_json
from cli.render import SHIPMENTS
from cli.shipment_find import MAX_RECORDS, DateRange, read_whole
from cli.verified_reads import Reads, freshness_json, freshness_text
from contracts.identity_records import Organisation
from contracts.shipment_records import Shipment
from contracts.shipment_search import ShipmentFilter
from lightclient.answers import Verified
from lightclient.orgs import MATCH_RULE, Directory

MAX_ORGS = 50

# role -> whether a shipment has one of the organisations ``ids`` in that role
ROLES: dict[str, Callable[[Shipment, frozenset[str]], bool]] = {
    "consignor": lambda s, ids: s.consignor in ids,
    "consignee": lambda s, ids: s.consignee in ids,
    "party": lambda s, ids: not ids.isdisjoint(s.involved()),
}


@dataclass(frozen=True)
class ByName:
    """One name option: the role it asks about and the text typed."""

    role: str
    text: str

    @property
    def option(self) -> str:
        return f"--{self.role}-name"


@dataclass(frozen=True)
class Resolved:
    """A name option and the organisations it matched in the proven directory."""

    name: ByName
    orgs: tuple[Organisation, ...]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(o.id for o in self.orgs)

    def holds(self, shipment: Shipment) -> bool:
        return ROLES[self.name.role](shipment, self.ids)


def names_given(
    consignor: str | None, consignee: str | None, party: str | None, search: ShipmentFilter
) -> list[ByName]:
    """The name options given, each checked non-empty (and not with ``--party``)."""
    given = zip(ROLES, (consignor, consignee, party), strict=True)
    names = [ByName(role, text) for role, text in given if text is not None]
    for n in names:
        checked_name(n.text, n.option)
    if names and search.party is not None:
        fail("give --party (an organisation id) or a name option, not both")
    return names


def find_by_names(
    reads: Reads,
    names: Sequence[ByName],
    search: ShipmentFilter,
    days: DateRange | None,
    height: int | None,
    fmt: str,
) -> None:
    """Resolve ``names`` against the proven directory, then read every matching
    organisation's shipments (with ``search`` and ``days``) whole at that height."""
    verified, directory = read_directory(reads, height)
    resolved = [Resolved(n, directory.matching(n.text)) for n in names]
    walk = min(resolved, key=lambda r: len(r.orgs))
    if len(walk.orgs) > MAX_ORGS:
        fail(
            f"{walk.name.option} {walk.name.text!r} matches {len(walk.orgs)} organisations "
            f"(at most {MAX_ORGS}): give more of the name; `cityledger org find` lists them"
        )
    found: dict[str, Shipment] = {}
    withheld = 0
    for org in walk.orgs:
        for page in read_whole(reads, search._replace(party=org.id), directory.height):
            withheld += page.view.page.withheld
            for s in page.view.found:
                if all(r.holds(s) for r in resolved) and (days is None or days.holds(s)):
                    found[s.id] = s
        if len(found) > MAX_RECORDS:
            fail(f"over {MAX_RECORDS} shipments match: add a filter")
    shipments = sorted(found.values(), key=lambda s: (s.declared_time_ms, s.id))
    _report(verified, resolved, directory, shipments, withheld, fmt)


def _report(
    verified: Verified[Any],
    resolved: Sequence[Resolved],
    directory: Directory,
    shipments: Sequence[Shipment],
    withheld: int,
    fmt: str,
) -> None:
    if fmt == "json":
        names = [
            {"option": r.name.option, "name": r.name.text, "rule": MATCH_RULE,
             "organisations": [org_json(o) for o in r.orgs]}
            for r in resolved
        ]  # fmt: skip
        print_json(
            {**freshness_json(verified), "complete": True, "names": names}
            | {"directory_size": len(directory.organisations), "withheld": withheld}
            | {"shipments": [record_json(s) for s in shipments]}
        )
        return
    notes = SHIPMENTS.emit(shipments, fmt)
    for r in resolved:
        line = describe_matches(r.name.text, r.orgs, directory)
        notes.print(f"{r.name.option}: {line}", highlight=False, soft_wrap=True)
    notes.print(
        _summary(resolved, len(shipments), withheld, directory.height),
        highlight=False,
        soft_wrap=True,
    )
    notes.print(freshness_text(verified))


def _summary(resolved: Sequence[Resolved], found: int, withheld: int, height: int) -> str:
    if not all(r.orgs for r in resolved):
        return "0 shipments: a name matched no organisation"
    text = (
        f"{found} shipments {' and '.join(_condition(r) for r in resolved)}, complete: every "
        f"matching organisation's search proven complete at height {height}"
    )
    if withheld:
        text += (
            f"; up to {withheld} more this key may not read (the withheld slots of these "
            "organisations' searches, whatever their role there: counted, not shown)"
        )
    return text


def _condition(r: Resolved) -> str:
    """``whose consignee is acme``, ``with one of the 2 organisations matching 'x' as a
    party or holder``."""
    who = (
        r.orgs[0].id
        if len(r.orgs) == 1
        else (f"one of the {len(r.orgs)} organisations matching {r.name.text!r}")
    )
    return (
        f"with {who} as a party or holder"
        if r.name.role == "party"
        else (f"whose {r.name.role} is {who}")
    )

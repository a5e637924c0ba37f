"""``cityledger org find NAME``: which organisations a name means, proven complete.

Organisations are public records: the read is unsigned. The whole organisation
directory is read at one certified height and checked complete
(:mod:`cli.org_directory`); the names are matched here, so the list shown is
every organisation whose name contains NAME, none left out and none made up.
"""

from __future__ import annotations

import click

from cli.org_directory import ORGS, checked_name, describe_matches, org_json, read_directory
from cli.output import print_json
from cli.read_source import Source, read_at_options
from cli.tabular import format_option
from cli.verified_reads import freshness_json, freshness_text
from lightclient.orgs import MATCH_RULE


@click.group()
def org() -> None:
    """Organisations: find them by name, checked against the genesis validators."""


@org.command()
@click.argument("name", metavar="NAME")
@read_at_options()
@format_option()
def find(name: str, height: int | None, source: Source, fmt: str) -> None:
    """Organisations whose name contains NAME (case-insensitive), from the whole
    organisation directory, proven complete: use their ids with `shipment find --party`."""
    name = checked_name(name, "NAME")
    reads = source.reads()
    verified, directory = read_directory(reads, height)
    matched = directory.matching(name)
    if fmt == "json":
        print_json(
            {**freshness_json(verified), "complete": True, "name": name, "rule": MATCH_RULE}
            | {"directory_size": len(directory.organisations)}
            | {"organisations": [org_json(o) for o in matched]}
        )
        return
    notes = ORGS.emit(matched, fmt)
    notes.print(
        describe_matches(name, matched, directory, listed=True), highlight=False, soft_wrap=True
    )
    notes.print(freshness_text(verified))

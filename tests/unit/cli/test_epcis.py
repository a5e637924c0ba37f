"""GS1 EPCIS 2.0 export: ``shipment provenance --format epcis``, built from verified
records and validated against GS1's JSON Schema (the API route: tests/unit/node/api/
test_epcis_route.py).

The schema copy in tests/vectors/epcis/ first accepts GS1's own example and rejects a
broken one, so a schema (or a validator setup) that accepts everything cannot pass here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from contracts.epcis import container_uri, org_uri, place_uri
from tests.unit.cli.kit import CONTAINER, SHIPMENT, ServerThread, message, run
from tests.unit.epcis_kit import VECTORS
from tests.unit.epcis_kit import schema_errors as errors


def export(server: ServerThread, genesis: str, key: str) -> Any:
    result = run(["shipment", "provenance", SHIPMENT, "--node", server.url, "--genesis",
                  genesis, "--key", key, "--format", "epcis"])  # fmt: skip
    assert result.exit_code == 0, message(result)
    assert "verified at height" in result.stderr  # what was checked goes to stderr
    return json.loads(result.stdout)


def test_the_schema_copy_accepts_gs1s_example_and_checks_formats() -> None:
    example = json.loads((VECTORS / "Example_9.6.1-ObjectEvent.jsonld").read_text())
    # its document id "_:document1" is a JSON-LD blank node, not an RFC 3986 URI: the
    # strict format checker refuses it (our export has no document id)
    assert errors(example) == ["'_:document1' is not a 'uri'"]
    del example["id"]
    assert errors(example) == []
    broken = copy.deepcopy(example)
    broken["epcisBody"]["eventList"][0]["eventTime"] = "yesterday"
    assert errors(broken), "date-time formats are not checked (jsonschema format extras?)"


def test_export_validates_and_maps_the_history(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    doc = export(server, genesis_file, keys["officer"])
    assert errors(doc) == []
    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    events = doc["epcisBody"]["eventList"]
    names = [e["cityledger:event"] for e in events]
    assert names[0] == "declared" and names[-1] == "customs_decision"
    assert [e["cityledger:seq"] for e in events] == list(range(len(events)))
    assert len({e["eventID"] for e in events}) == len(events)
    declared, decision = events[0], events[-1]
    assert declared["action"] == "ADD" and all(e["action"] == "OBSERVE" for e in events[1:])
    assert declared["epcList"] == [container_uri(CONTAINER)]
    assert declared["sourceList"] == [{"type": "owning_party", "source": org_uri("acme")}]
    assert declared["destinationList"][0]["destination"] == org_uri("globex")
    assert decision["disposition"] == "conformant"  # a clearance
    milestones = [e for e in events if e["cityledger:event"] == "milestone"]
    assert milestones and all(e["readPoint"]["id"].startswith(place_uri("")) for e in milestones)
    custody = next(e for e in events if e["cityledger:event"] == "custody_transferred")
    assert custody["destinationList"] == [
        {"type": "possessing_party", "destination": org_uri("oceanic")}
    ]
    for e in events:
        assert len(e["cityledger:txHash"]) == 64 and e["cityledger:blockHeight"] >= 1
        assert e["eventTimeZoneOffset"] == "+00:00" and e["eventTime"].endswith("Z")


def test_a_broken_export_is_rejected_by_the_schema(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    """The negative case: what a mapping bug would produce is caught by the schema."""
    doc = export(server, genesis_file, keys["officer"])
    for breakage in (
        lambda e: e.update(bizStep="declaring"),  # not a CBV step, and not a URI
        lambda e: e.update(action="CREATE"),
        lambda e: e.pop("eventTimeZoneOffset"),
        lambda e: e.update(eventTimeZoneOffset="UTC"),
        lambda e: e.update(epcList=[CONTAINER]),  # a bare number is not a URI
    ):
        broken = copy.deepcopy(doc)
        breakage(broken["epcisBody"]["eventList"][0])
        assert errors(broken), broken["epcisBody"]["eventList"][0]

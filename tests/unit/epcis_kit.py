"""GS1's EPCIS 2.0 JSON Schema (tests/vectors/epcis/), with formats checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

VECTORS = Path(__file__).parents[1] / "vectors" / "epcis"
SCHEMA = json.loads((VECTORS / "EPCIS-JSON-Schema.json").read_text())
VALIDATOR = Draft7Validator(SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_errors(document: Any) -> list[str]:
    """What the schema finds wrong with ``document`` (empty: valid)."""
    return [e.message for e in VALIDATOR.iter_errors(document)]

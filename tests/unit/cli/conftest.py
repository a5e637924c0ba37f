"""Fixtures: a served chain with a shipment journey and a permit, a genesis file, key files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.cli.kit import ORGS, CliNode, ServerThread, build_journey, build_permit, serve
from tests.unit.cli.kit import write_keys as _write_keys


@pytest.fixture
def node() -> CliNode:
    n = CliNode()
    build_journey(n)
    build_permit(n)
    return n


@pytest.fixture
def server(node: CliNode) -> Iterator[ServerThread]:
    s = serve(node)
    yield s
    s.stop()


@pytest.fixture
def genesis_file(node: CliNode, tmp_path: Path) -> str:
    path = tmp_path / "genesis.json"
    path.write_text(node.genesis.to_json())
    return str(path)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    labels = [label for _, members in ORGS.values() for label, _ in members]
    return _write_keys(str(tmp_path), labels)

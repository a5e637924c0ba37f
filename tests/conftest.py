"""The ``full`` marker: scenarios of the fault matrix and long rehearsals that ``make test``
leaves out (it must stay under ten minutes) and ``make faults`` runs, with
``CITYLEDGER_FULL_FAULTS=1``. Without it they are deselected, and pytest says how many."""

from __future__ import annotations

import os

import pytest

FULL_ENV = "CITYLEDGER_FULL_FAULTS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"full: long scenario of the full matrix (runs only with {FULL_ENV}=1)"
    )
    config.addinivalue_line("markers", "netns: needs root and Linux network namespaces")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(FULL_ENV) == "1":
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if item.get_closest_marker("full") is not None else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

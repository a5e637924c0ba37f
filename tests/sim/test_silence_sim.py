"""The silence watch in the simulator (node/silence.py, as tests/sim/node.py's nodes
use it): with one validator of four voting at every height and never proposing, every
seed stays safe and live, the honest nodes find it withholding, and they reach the same
heights sooner than with the watch switched off — the same seeds, deterministically."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from node import silence
from tests.sim.network import NetConfig
from tests.sim.node import WITHHOLD_PROPOSALS
from tests.sim.world import SIM_TIMEOUTS, Result, ScenarioConfig, World

WITHHOLDER = 3
HEIGHTS = 24  # after GST: six of the withholder's turns with four validators
SEEDS = range(12)


# The founding propose timeout, whose full wait the watch replaces with SILENT_PROPOSE_MS
# (the seeded scenarios' 200 ms is cut to 50: tests/sim/test_sim.py counts those waits).
TIMEOUTS = replace(SIM_TIMEOUTS, propose_ms=2000)


def _world(seed: int) -> World:
    net = NetConfig(gst=400, max_delay=60, post_gst_max_delay=20, drop=0.02)
    config = ScenarioConfig(
        seed,
        4,
        net,
        {WITHHOLDER: WITHHOLD_PROPOSALS},
        [],
        seed,
        timeouts=TIMEOUTS,
        liveness_heights=HEIGHTS,
    )
    return World(config)


def _run(seed: int) -> Result:
    result = _world(seed).run()
    assert result.ok, result.report()
    return result


def test_a_proposal_withholder_is_found_and_costs_its_turns_less(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """It is found withholding in every seed (and silent at times, where its votes lag
    by more than a height: either way its round 0 is awaited briefly), and every seed
    reaches its heights sooner than with the watch switched off."""
    with_rule: list[int] = []
    found = 0
    for seed in SEEDS:
        caplog.clear()
        with caplog.at_level(logging.INFO, "cityledger.consensus"):
            with_rule.append(_run(seed).sim_time)
        found += f"has not proposed at its last {silence.MISSED_TURNS} turns" in caplog.text
    assert found == len(SEEDS)
    monkeypatch.setattr(silence, "MISSED_TURNS", 10**9)  # the watch switched off: where the
    monkeypatch.setattr(silence, "QUIET_HEIGHTS", 10**9)  # withholder's votes lag, it is silent
    without = [_run(seed).sim_time for seed in SEEDS]
    faster = sum(a < b for a, b in zip(with_rule, without, strict=True))
    assert faster == len(SEEDS), (with_rule, without)

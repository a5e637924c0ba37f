"""The bench's reading of the nodes' height phases (benchmarks/phases.py)."""

from __future__ import annotations

import pytest

from benchmarks.phases import parse_phases, phase_figures
from node.api.metrics import Metrics


def _text(metrics: Metrics) -> str:
    return metrics.render().decode()


def test_the_mean_of_each_phase_over_the_heights_between_two_reads() -> None:
    metrics = Metrics()
    metrics.observe_phases({"propose": 0.4, "validate": 0.1})
    before = parse_phases(_text(metrics))
    assert before == {
        "propose": pytest.approx((0.4, 1.0)),
        "validate": pytest.approx((0.1, 1.0)),
    }
    metrics.observe_phases({"propose": 0.2, "validate": 0.05, "build": 0.1})
    metrics.observe_phases({"propose": 0.3, "validate": 0.15})
    after = parse_phases(_text(metrics))
    assert phase_figures(before, after) == {"build": 100.0, "propose": 250.0, "validate": 100.0}


def test_no_heights_measured_between_the_reads_gives_no_figure() -> None:
    metrics = Metrics()
    metrics.observe_phases({"propose": 0.4})
    same = parse_phases(_text(metrics))
    assert phase_figures(same, same) == {}
    assert parse_phases("") == {}
    assert parse_phases(_text(Metrics())) == {}


def test_the_run_table_shows_the_proposers_parts_inside_propose() -> None:
    from cli.bench_cmd import _phases

    doc = {"propose": 419.0, "wait": 205.5, "build": 195.6, "validate": 0.1, "prevotes": 101.6}
    doc["precommits"] = 16.8
    assert _phases(doc) == (
        "propose 419.0 (wait 205.5, build 195.6), validate 0.1, prevotes 101.6, precommits 16.8"
    )
    assert _phases({"propose": 300.0, "validate": 1.0}) == "propose 300.0, validate 1.0"
    assert _phases({}) == "-"

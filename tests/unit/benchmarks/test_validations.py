"""The bench's reading of how the nodes validated proposals (benchmarks/validations.py)."""

from __future__ import annotations

from benchmarks.validations import totals_of, validation_figures
from cli.bench_cmd import _validated


def _status(ahead: int, executed: int) -> dict[str, object]:
    """The part of a node's /v1/status the bench reads (node/status.py)."""
    return {"consensus": {"height": 9, "validations": {"ahead": ahead, "executed": executed}}}


def test_the_validations_between_two_reads_added_up_over_the_nodes() -> None:
    before = totals_of([_status(3, 1), _status(2, 2)])
    assert before == {"ahead": 5, "executed": 3}
    after = totals_of([_status(40, 4), _status(38, 6)])
    assert validation_figures(before, after) == {"ahead": 73, "executed": 7}
    assert _validated(validation_figures(before, after)) == (
        "73 of 80",
        "proposals, the others executed on arrival",
    )


def test_nodes_that_do_not_execute_ahead_or_answer_give_no_figure() -> None:
    off = {"consensus": {"height": 9, "speculation": {}}}  # speculate off: no validations
    quiet: dict[str, object] = {}  # did not answer
    garbled = {"consensus": {"validations": {"ahead": "many"}}}
    totals = totals_of([off, quiet, garbled])
    assert totals == {"ahead": 0, "executed": 0}
    assert validation_figures(totals, totals_of([off, quiet, garbled])) == {}
    assert _validated({})[0] == "-"

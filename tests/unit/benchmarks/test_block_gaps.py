"""The bench's longest waits between blocks: where in the run they fell."""

from __future__ import annotations

from benchmarks.driver import BlockWatch
from benchmarks.run import _longest_gaps, _max_gap


def test_the_longest_gaps_name_their_height_time_and_size_longest_first() -> None:
    watch = BlockWatch("http://127.0.0.1:1")
    times = {4: 100.0, 5: 100.5, 6: 102.0, 7: 102.2, 8: 103.2, 9: 103.4}
    for height, at in times.items():
        watch.announced[height] = at
        watch.tx_count[height] = height * 10
    gaps = _longest_gaps(watch, base=5, tip=9, count=2)
    assert gaps == [
        {"height": 6, "gap_s": 1.5, "at_s": 1.5, "txs": 60},
        {"height": 8, "gap_s": 1.0, "at_s": 2.7, "txs": 80},
    ]
    assert gaps[0]["gap_s"] == round(_max_gap(watch, 5, 9), 3)  # block 4 is before the phase


def test_a_phase_of_one_block_has_no_gaps() -> None:
    watch = BlockWatch("http://127.0.0.1:1")
    watch.announced[3] = 1.0
    assert _longest_gaps(watch, base=3, tip=3) == []

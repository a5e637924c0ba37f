"""The collector settings of a started node, and their undoing for a benchmark run."""

from __future__ import annotations

import gc

from node.collector import YOUNG_THRESHOLD, settled


def test_settled_freezes_start_up_objects_and_spaces_passes_then_gives_them_back() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with settled():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0  # what existed is out of the collector's walks
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0

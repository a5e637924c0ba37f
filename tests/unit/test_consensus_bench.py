"""The consensus core benchmark (``make bench-core``) runs: a few heights, not a measurement."""

from __future__ import annotations

import pytest

from benchmarks import consensus_bench


@pytest.mark.parametrize("validator", [False, True])
def test_votes_flow_through_the_core_for_a_few_heights(validator: bool) -> None:
    assert consensus_bench._core_votes_per_s(4, 3, validator=validator) > 0


def test_vote_verifications_are_counted_as_cache_misses() -> None:
    assert consensus_bench._verifications_per_s(7) > 0

"""``python -m benchmarks.state_phases``: a state-tree update timed in its two parts, on
the same blocks ``apply`` then commits (the module refuses a root that differs)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import state_bench, state_phases


def test_the_timed_parts_give_apply_s_root_and_every_figure_is_there() -> None:
    figures = state_phases.run(3_000, 200)
    assert figures["n"] == 3_000 and figures["batch"] == 200
    for name in ("walk_us_per_key", "pages_us_per_key", "apply_us_per_key"):
        assert figures[name] > 0
    # 200 random keys of 3,000: each writes its own page below the shared top ones
    assert 1.0 <= figures["pages_per_key"] < 3.0


def test_a_walk_that_gives_another_root_than_apply_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = state_bench._block
    roots: list[bytes] = []

    def skewed(*args: Any) -> tuple[bytes, float, float]:  # the build's root, then another
        root, apply_s, commit_s = real(*args)
        roots.append(root)
        return (root if len(roots) == 1 else bytes(32)), apply_s, commit_s

    monkeypatch.setattr(state_bench, "_block", skewed)
    with pytest.raises(AssertionError, match="another root"):
        state_phases.run(2_000, 50)
    assert len(roots) == 2  # the build (one batch), then the first timed block

"""``lightclient.answers``: the one place that decides genesis, freshness and whole histories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from lightclient.answers import (
    Freshness,
    HistoryCount,
    StaleAnswer,
    Verified,
    describe_age,
    verify_answer,
)
from lightclient.errors import GenesisMismatch, VerificationError
from tests.unit.cli.kit import CliNode, build_permit

MINUTE = 60_000


@dataclass(frozen=True)
class View:
    certified: Any
    counts: tuple[HistoryCount, ...] = ()

    def histories(self) -> tuple[HistoryCount, ...]:
        return self.counts


@pytest.fixture(scope="module")
def chain() -> CliNode:
    node = CliNode()
    build_permit(node)
    return node


def certified(node: CliNode, height: int | None = None) -> Any:
    from lightclient.headers import check_certificate

    h = node.chain.head().height if height is None else height
    block, cert = node.chain.block(h), node.chain.certificate(h)
    assert block is not None and cert is not None
    return check_certificate(block.header, cert, node.genesis)


def test_a_fresh_answer_with_whole_histories_is_verified(chain: CliNode) -> None:
    c = certified(chain)
    now = c.header.time_ms + 5_000
    view = View(c, (HistoryCount("permit 'P'", 4, 4),))
    verified = verify_answer(lambda: view, chain.genesis, chain.genesis.hash,
                             Freshness.current(now, MINUTE))  # fmt: skip
    assert verified.view is view and verified.age_ms == 5_000 and verified.asked == ""
    assert verified.height == c.height and verified.time_ms == c.header.time_ms


def test_only_verify_answer_builds_a_verified_answer(chain: CliNode) -> None:
    with pytest.raises(TypeError, match="built only by"):
        Verified(View(certified(chain)), 0, "", object())


def test_a_stale_answer_is_refused_unless_asked_for(chain: CliNode) -> None:
    c = certified(chain)
    late = c.header.time_ms + 2 * MINUTE
    with pytest.raises(StaleAnswer, match="is 2 min 0 s old, over the limit of 1 min 0 s") as exc:
        verify_answer(lambda: View(c), chain.genesis, None, Freshness.current(late, MINUTE))
    assert exc.value.height == c.height and exc.value.age_ms == 2 * MINUTE
    asked = verify_answer(lambda: View(c), chain.genesis, None,
                          Freshness.at_height(late, c.height))  # fmt: skip
    assert asked.asked == f"height {c.height}"
    covering = Freshness.covering(late, MINUTE, c.header.time_ms)
    assert verify_answer(lambda: View(c), chain.genesis, None, covering).age_ms == 2 * MINUTE
    with pytest.raises(StaleAnswer):
        later = Freshness.covering(late, MINUTE, c.header.time_ms + 1)
        verify_answer(lambda: View(c), chain.genesis, None, later)


def test_the_height_asked_for_must_be_the_height_answered(chain: CliNode) -> None:
    c = certified(chain, 2)
    with pytest.raises(
        VerificationError, match="asked for height 3, the node answered for height 2"
    ):
        verify_answer(lambda: View(c), chain.genesis, None, Freshness.at_height(0, 3))


def test_a_short_history_is_refused(chain: CliNode) -> None:
    c = certified(chain)
    fresh = Freshness.current(c.header.time_ms, MINUTE)
    for proven in (0, 3):
        view = View(c, (HistoryCount("permit 'P'", 4, proven),))
        with pytest.raises(VerificationError, match=f"declares 4 history entries, {proven} are"):
            verify_answer(lambda v=view: v, chain.genesis, None, fresh)  # type: ignore[misc]
    empty = View(c, (HistoryCount("permit 'P'", 0, 0),))
    assert verify_answer(lambda: empty, chain.genesis, None, fresh).view is empty


def test_another_genesis_is_named_with_both_hashes(chain: CliNode) -> None:
    c = certified(chain)
    fresh = Freshness.current(c.header.time_ms, MINUTE)
    theirs = bytes(32)
    with pytest.raises(GenesisMismatch) as exc:
        verify_answer(lambda: View(c), chain.genesis, theirs, fresh)
    text = str(exc.value)
    assert f"this chain's genesis is {theirs.hex()}, yours is {chain.genesis.hash.hex()}" in text

    def other_validators() -> View:
        raise GenesisMismatch("another validator set", chain.genesis.hash)

    with pytest.raises(GenesisMismatch, match=f"genesis is {theirs.hex()}, yours"):
        verify_answer(other_validators, chain.genesis, theirs, fresh)
    with pytest.raises(GenesisMismatch, match="genesis is unknown, yours"):
        verify_answer(other_validators, chain.genesis, None, fresh)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (850, "850 ms"),
        (12_000, "12 s"),
        (303_000, "5 min 3 s"),
        (7_440_000, "2 h 4 min"),
        (263_000_000, "3 d 1 h"),
    ],
)
def test_ages_read_as_people_say_them(ms: int, text: str) -> None:
    assert describe_age(ms) == text

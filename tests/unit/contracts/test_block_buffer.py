"""The block buffer reads each committed value once a block, and never answers stale."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contracts.context import BlockBuffer


class _Counting:
    """Committed state that counts the reads it answers."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.reads: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return self.data.get(key)


def test_a_committed_value_is_read_once_a_block() -> None:
    base = _Counting({b"member/a": b"A"})
    block = BlockBuffer(base)
    assert [block.get(b"member/a") for _ in range(3)] == [b"A"] * 3
    assert [block.get(b"gov/suspended/x") for _ in range(3)] == [None] * 3  # absent: kept too
    assert base.reads == [b"member/a", b"gov/suspended/x"]
    assert BlockBuffer(base).get(b"member/a") == b"A"  # a new block reads again
    assert base.reads[-1] == b"member/a"


def test_the_blocks_own_write_wins_over_a_value_read_before() -> None:
    block = BlockBuffer(_Counting({b"k": b"old"}))
    assert block.get(b"k") == b"old"
    block.state[b"k"] = b"new"
    assert block.get(b"k") == b"new"
    block.state[b"k"] = None  # deleted by the block
    assert block.get(b"k") is None


_KEYS = st.sampled_from([b"a", b"b", b"c", b"d"])
_OPS = st.lists(
    st.tuples(st.sampled_from(["get", "put", "delete"]), _KEYS, st.binary(max_size=3)),
    max_size=40,
)


@given(committed=st.dictionaries(_KEYS, st.binary(max_size=3)), ops=_OPS)
def test_reads_equal_a_buffer_without_the_cache(
    committed: dict[bytes, bytes], ops: list[tuple[str, bytes, bytes]]
) -> None:
    """Any sequence of reads, writes and deletes answers what reading through every
    time answers, and reads each committed key at most once."""
    base = _Counting(dict(committed))
    block = BlockBuffer(base)
    model: dict[bytes, bytes | None] = {}
    for op, key, value in ops:
        if op == "get":
            expected = model[key] if key in model else committed.get(key)
            assert block.get(key) == expected
        else:
            model[key] = block.state[key] = value if op == "put" else None
    assert len(base.reads) == len(set(base.reads))

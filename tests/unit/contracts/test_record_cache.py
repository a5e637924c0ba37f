"""Typed records kept by their bytes: the same bytes give the same record, a record just
stored is what the next read of its bytes returns, and what is kept stays bounded."""

from __future__ import annotations

import pytest

from contracts import record_cache
from contracts.identity_records import Organisation
from ledger.encoding import encode


def org(n: int) -> Organisation:
    return Organisation(
        id=f"org-{n}",
        name=f"Org {n}",
        kind="port_authority",
        city="Busan",
        founding=False,
        members=(),
        registered_height=n,
    )


def test_the_same_bytes_read_as_one_record_equal_to_a_fresh_read() -> None:
    raw = encode(org(1).to_obj())
    first = record_cache.typed_record(Organisation, raw)
    assert first == Organisation.from_obj(org(1).to_obj())
    assert record_cache.typed_record(Organisation, bytes(raw)) is first


def test_a_stored_record_answers_the_next_read_of_its_bytes() -> None:
    record = org(2)
    raw = encode(record.to_obj())
    record_cache.remember(record, raw)
    assert record_cache.typed_record(Organisation, raw) is record


def test_what_is_kept_stays_within_its_byte_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_cache, "MAX_BYTES", 20_000)
    monkeypatch.setattr(record_cache, "_young", {})
    monkeypatch.setattr(record_cache, "_old", {})
    monkeypatch.setattr(record_cache, "_young_cost", 0)
    monkeypatch.setattr(record_cache, "_old_cost", 0)
    for n in range(1_000):
        record_cache.typed_record(Organisation, encode(org(n).to_obj()))
        assert record_cache.kept_bytes() <= 20_000
    # the newest is kept, the oldest went
    newest = encode(org(999).to_obj())
    assert record_cache.typed_record(Organisation, newest) is record_cache.typed_record(
        Organisation, newest
    )
    assert not record_cache.is_kept(encode(org(0).to_obj()))


def test_bytes_kept_for_another_record_class_are_read_as_the_class_asked_for() -> None:
    record = org(3)
    raw = encode(record.to_obj())
    record_cache.remember(("not", "an", "organisation"), raw)
    got = record_cache.typed_record(Organisation, raw)
    assert got == record and type(got) is Organisation


def test_a_record_over_the_size_bound_is_built_each_time_and_not_kept() -> None:
    big = org(4).replace(name="x" * 3000)
    raw = encode(big.to_obj())
    assert record_cache.typed_record(Organisation, raw) == big
    record_cache.remember(big, raw)
    assert not record_cache.is_kept(raw)

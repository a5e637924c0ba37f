"""The wait a 429 asks for, as the clients read it: ``Retry-After-Ms`` first, then
``Retry-After``."""

from __future__ import annotations

from multidict import CIMultiDict

from node.api.waits import error_code, retry_after_s


def wait(**headers: str) -> float:
    named = CIMultiDict((k.replace("_", "-"), v) for k, v in headers.items())
    return retry_after_s(named, default=0.5, lo=0.05, hi=10.0)


def test_the_millisecond_header_wins_over_whole_seconds() -> None:
    assert wait(Retry_After="1", Retry_After_Ms="250") == 0.25
    assert wait(retry_after="1", retry_after_ms="250") == 0.25  # names in any case


def test_whole_seconds_alone_are_taken_as_they_are() -> None:
    assert wait(Retry_After="3") == 3.0


def test_what_is_not_a_number_falls_back() -> None:
    assert wait(Retry_After="2", Retry_After_Ms="soon") == 2.0  # a bad ms: the seconds
    assert wait(Retry_After="Wed, 21 Oct 2026 07:28:00 GMT") == 0.5  # a date: the default
    assert wait(Retry_After_Ms="nan", Retry_After="nan") == 0.5
    assert wait() == 0.5
    assert retry_after_s(None, default=0.5, lo=0.05, hi=10.0) == 0.5


def test_the_wait_is_kept_within_its_bounds() -> None:
    assert wait(Retry_After_Ms="1") == 0.05  # not at once
    assert wait(Retry_After="86400") == 10.0  # not for a day
    assert wait(Retry_After_Ms="-5000") == 0.05


def test_error_code_reads_an_answer_or_an_item_and_nothing_else() -> None:
    assert error_code({"error": {"code": "overloaded", "message": "m"}}) == "overloaded"
    assert error_code({"status": "pending"}) is None
    assert error_code({"error": "overloaded"}) is None  # not the shape a node sends
    assert error_code({"error": {"code": 429}}) is None

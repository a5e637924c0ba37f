"""An error kept as an answer lets go of the frames that raised it (ledger.errors)."""

from __future__ import annotations

from ledger.errors import LedgerError, ValidationError


def _raised_from_another() -> LedgerError:
    try:
        try:
            raise KeyError("inner")
        except KeyError:
            raise ValidationError("outer", code="bad_field") from None
    except LedgerError as exc:
        return exc


def test_an_answer_keeps_its_code_and_message_and_drops_its_frames() -> None:
    error = _raised_from_another()
    assert error.__traceback__ is not None and isinstance(error.__context__, KeyError)
    answer = error.as_answer()
    assert answer is error and (answer.code, str(answer)) == ("bad_field", "outer")
    assert answer.__traceback__ is None
    assert answer.__context__ is None and answer.__cause__ is None

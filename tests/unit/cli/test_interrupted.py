"""How ``cityledger`` ends when interrupted (Ctrl-C, or SIGTERM where a command turns it
into KeyboardInterrupt) and when a prompt is declined: 130 "interrupted" against 1
"aborted" (cli/main.py)."""

from __future__ import annotations

import click
import pytest

from cli import main as cli_main


def _ends(monkeypatch: pytest.MonkeyPatch, raised: BaseException) -> int:
    @click.command()
    def command() -> None:
        raise raised

    monkeypatch.setattr(cli_main, "cli", command)
    monkeypatch.setattr("sys.argv", ["cityledger"])
    with pytest.raises(SystemExit) as ended:
        cli_main.main()
    code = ended.value.code
    assert isinstance(code, int)
    return code


def test_an_interrupted_command_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ends(monkeypatch, KeyboardInterrupt()) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_a_declined_prompt_is_aborted_not_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ends(monkeypatch, click.Abort()) == 1
    assert "aborted" in capsys.readouterr().err

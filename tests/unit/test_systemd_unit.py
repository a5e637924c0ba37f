"""The example systemd unit starts the node the way the CLI expects and hands it the
passphrase the way cli/passphrase.py reads it."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import click

from cli.main import cli
from cli.passphrase import CREDENTIAL

UNIT = Path(__file__).resolve().parents[2] / "docs" / "systemd" / "cityledger.service"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[method-assign]  (keys keep their case)
    parser.read_string(UNIT.read_text())
    return parser


def test_exec_start_is_a_command_the_cli_has() -> None:
    argv = shlex.split(unit()["Service"]["ExecStart"])
    assert argv[0].endswith("/cityledger") and argv[1:3] == ["node", "start"]
    node = cli.get_command(click.Context(cli), "node")
    assert isinstance(node, click.Group)
    options = {opt for p in node.commands["start"].params for opt in p.opts}
    assert {a for a in argv[3:] if a.startswith("--")} <= options


def test_the_passphrase_is_the_credential_the_cli_reads() -> None:
    service = unit()["Service"]
    name, _, source = service["LoadCredential"].partition(":")
    assert name == CREDENTIAL and source.startswith("/etc/")
    assert "Environment" not in service, "no passphrase in the unit's environment"
    assert service["KillSignal"] == "SIGTERM" and service["UMask"] == "0077"

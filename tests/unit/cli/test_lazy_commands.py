"""``cityledger`` imports a command's module only when that command runs (cli/commands.py)."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from cli import commands
from cli.main import cli


def test_every_listed_command_loads_under_its_name() -> None:
    for name in commands.COMMANDS:
        command = commands.load(name)
        assert command.name == name, (name, command.name)


def test_subcommands_from_other_modules_join_their_group() -> None:
    for name, attached in commands.ATTACHED.items():
        group = commands.load(name)
        assert isinstance(group, click.Group)
        for where in attached:
            sub = commands._resolve(where)
            assert group.commands.get(sub.name or "") is sub, where


def test_the_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:")[1]
    for name in commands.COMMANDS:
        assert f"\n  {name} " in listed, name


def test_an_unknown_command_is_named() -> None:
    result = CliRunner().invoke(cli, ["shipments"])
    assert result.exit_code == 2
    assert "No such command 'shipments'" in result.output


def _modules_after(*args: str) -> set[str]:
    """The cli and heavy modules a fresh ``cityledger ARGS`` process has imported."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('\\n'.join(sorted(sys.modules))))\n"
        f"sys.argv = ['cityledger', *{list(args)!r}]\n"
        "from cli.main import main\n"
        "main()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(out.stdout.split())


def test_a_command_imports_its_own_module_and_not_the_others() -> None:
    loaded = _modules_after("keys", "--help")
    assert "cli.keys_cmd" in loaded
    for other in ("cli.audit_cmd", "cli.node_cmd", "cli.bench_cmd", "reportlab", "aiohttp"):
        assert other not in loaded, other


def test_an_officers_query_loads_neither_the_web_server_nor_the_audit() -> None:
    """The request signing the CLI shares with the node (node/api/auth.py) reaches its
    error class without the node's web framework, and the block feed of ``shipment
    watch`` imports its WebSocket client only when it runs."""
    loaded = _modules_after("shipment", "provenance", "--help")
    assert "cli.shipment_cmd" in loaded and "node.api.auth" in loaded
    for other in ("aiohttp", "reportlab", "cli.audit_cmd", "node.api.render"):
        assert other not in loaded, other


def test_the_audit_loads_the_pdf_renderer_only_for_a_pdf_report() -> None:
    loaded = _modules_after("audit", "verify", "--help")
    assert "cli.audit_cmd" in loaded
    assert "reportlab" not in loaded and "cli.audit_pdf" not in loaded

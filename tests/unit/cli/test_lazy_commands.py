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


def test_each_summary_is_the_commands_own_short_help() -> None:
    assert set(commands.SUMMARIES) == set(commands.COMMANDS)
    for name in commands.COMMANDS:
        assert commands.load(name).get_short_help_str(10_000) == commands.SUMMARIES[name], name


def test_the_listing_is_clicks_own_at_every_width() -> None:
    """The help a fresh process prints from the summaries is, byte for byte, the one click
    prints with every command loaded (truncated to the terminal's width alike)."""
    everything = click.Group(name="cityledger", help=cli.help, params=cli.params,
                             context_settings=cli.context_settings)  # fmt: skip
    for name in commands.COMMANDS:
        everything.add_command(commands.load(name), name)
    lazy = commands.LazyGroup(name="cityledger", help=cli.help, params=cli.params,
                              context_settings=cli.context_settings)  # fmt: skip
    for width in (50, 60, 72, 80, 120):
        expected = CliRunner().invoke(everything, ["--help"], terminal_width=width)
        got = CliRunner().invoke(lazy, ["--help"], terminal_width=width)
        assert got.exit_code == expected.exit_code == 0
        assert "Commands:" in got.output
        assert got.output == expected.output, width


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


def test_the_top_level_help_imports_no_command() -> None:
    loaded = _modules_after("--help")
    assert not {m for m in loaded if m.endswith("_cmd")}, sorted(m for m in loaded if "cmd" in m)
    assert "aiohttp" not in loaded and "reportlab" not in loaded


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

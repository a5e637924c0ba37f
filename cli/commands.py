"""Every ``cityledger`` command, by name, and where it is defined: ``cli.main`` imports a
command's module only when that command runs (``--help`` lists them from
:data:`SUMMARIES` without importing any), so an officer's ``cityledger shipment
provenance`` does not pay for the audit's PDF renderer, the node, the benchmarks and the
rest (about half a second a run, measured: docs/cli.md).

=======================  ==================================================
``keys``                 new, show, import (cli/keys_cmd.py)
``genesis``              request, verify-request, assemble, sign,
                         add-signature, verify: founding a network
                         (cli/genesis_cmd.py, cli/genesis_sign_cmd.py)
``tx``                   one subcommand per contract action, ``send``,
                         ``show`` (cli/tx_cmd.py, cli/query_cmd.py)
``status``, ``block``    what a node says; a block checked (cli/query_cmd.py)
``shipment``             provenance, find, watch (cli/shipment_cmd.py)
``org``                  find: organisations by name, the directory proven
                         complete (cli/org_cmd.py)
``permit``               check, show, list, qr (cli/permit_cmd.py, cli/permit_qr.py)
``explorer``             check: the node serves this release's explorer scripts
                         (cli/explorer_cmd.py)
``energy``               account, market (cli/energy_cmd.py)
``audit``                verify, checkpoint, consistency (cli/audit_cmd.py)
``proof``                export, verify (cli/proof_cmd.py)
``evidence``             list: committed equivocation evidence, checked
                         (cli/evidence_cmd.py)
``gov``                  propose, approve, withdraw, list, show:
                         governance proposals (cli/gov_cmd.py)
``bench``                run, catchup, query, stages: a local network
                         measured (cli/bench_cmd.py, engine in benchmarks/)
``validators``           the validator set, checked (cli/validators_cmd.py)
``node``                 init, start, status, backup, restore, migrate-store …
                         (cli/node_cmd.py, cli/backup_cmd.py, cli/store_cmd.py)
``devnet``               up, down, status, logs, join (cli/devnet_cmd.py)
=======================  ==================================================

Every answer is checked by :mod:`lightclient` against the genesis validator set;
``docs/cli.md`` shows each command with its output.
"""

from __future__ import annotations

import importlib
import textwrap

import click

# name -> "module:attribute" of the command
COMMANDS: dict[str, str] = {
    "keys": "cli.keys_cmd:keys",
    "genesis": "cli.genesis_cmd:genesis",
    "tx": "cli.tx_cmd:tx",
    "status": "cli.query_cmd:status",
    "block": "cli.query_cmd:block",
    "shipment": "cli.shipment_cmd:shipment",
    "org": "cli.org_cmd:org",
    "permit": "cli.permit_cmd:permit",
    "explorer": "cli.explorer_cmd:explorer",
    "energy": "cli.energy_cmd:energy",
    "audit": "cli.audit_cmd:audit",
    "proof": "cli.proof_cmd:proof",
    "evidence": "cli.evidence_cmd:evidence",
    "gov": "cli.gov_cmd:gov",
    "validators": "cli.validators_cmd:validators",
    "bench": "cli.bench_cmd:bench",
    "node": "cli.node_cmd:node",
    "devnet": "cli.devnet_cmd:devnet",
}
# What `cityledger --help` lists for each command: its own short help, kept here so that
# listing them imports none (tests/unit/cli/test_lazy_commands.py checks each against the
# command's, and the whole listing against click's own at several widths).
SUMMARIES: dict[str, str] = {
    "keys": "Create, show and import Ed25519 key files.",
    "genesis": "Found a network: join requests, a draft genesis, the founders' signatures.",
    "tx": "Sign and submit transactions (one subcommand per action); show receipts.",
    "status": "What the node says about itself: chain, height, peers, mempool (not verified).",
    "block": "One block (HEIGHT or 'latest'): header, transactions, certificate.",
    "shipment": "Shipments: provenance and searches, checked against the genesis validators.",
    "org": "Organisations: find them by name, checked against the genesis validators.",
    "permit": "Permits: validity at a time, with proof.",
    "explorer": "The explorer pages every node serves at /explorer/.",
    "energy": "Energy accounts and markets, checked against the genesis validators.",
    "audit": "Re-check the chain from genesis; publish and check checkpoints.",
    "proof": "Export a record with all its proofs; verify such a bundle offline.",
    "evidence": "Equivocation evidence committed on the chain.",
    "gov": "Governance: changes the founding agencies approve on chain (more than 2/3 of them).",
    "validators": "The validator set in force at a height, verified from the genesis file "
    "through the certified chain of set changes, and that chain.",
    "bench": "Benchmark a local network: throughput, latency, catch-up, queries (default: run).",
    "node": "Initialise and run a validator node.",
    "devnet": "Run a local multi-validator network on loopback.",
}
# Subcommands defined in another module than their group: added when the group loads.
ATTACHED: dict[str, tuple[str, ...]] = {
    "tx": ("cli.query_cmd:tx_show",),
    "node": (
        "cli.backup_cmd:backup",
        "cli.backup_cmd:restore",
        "cli.store_cmd:migrate_store_cmd",
    ),
}


def load(name: str) -> click.Command:
    """The command ``name`` of :data:`COMMANDS`, its module imported now."""
    command = _resolve(COMMANDS[name])
    if isinstance(command, click.Group):
        for where in ATTACHED.get(name, ()):
            command.add_command(_resolve(where))
    return command


def _resolve(where: str) -> click.Command:
    module, _, attribute = where.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), where
    return command


class LazyGroup(click.Group):
    """A group whose commands of :data:`COMMANDS` are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing (``MultiCommand.format_commands``), with the summaries of
        commands not loaded yet taken from :data:`SUMMARIES` instead of importing them."""
        names = [name for name in self.list_commands(ctx) if not self._hidden(name)]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._summary(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _hidden(self, name: str) -> bool:
        command = self.commands.get(name)
        return command is not None and command.hidden

    def _summary(self, name: str, limit: int) -> str:
        command = self.commands.get(name)
        if command is not None:
            return command.get_short_help_str(limit)
        return shorten(SUMMARIES[name], limit)


def shorten(summary: str, limit: int) -> str:
    """A one-sentence summary cut to ``limit`` characters as click cuts a command's short
    help for a listing (whole words, then "...")."""
    if len(summary) <= limit:
        return summary
    if limit < 3:
        return "..."
    return textwrap.shorten(summary, limit, placeholder="...", break_on_hyphens=False)

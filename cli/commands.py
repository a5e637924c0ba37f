"""Every ``cityledger`` command, by name, and where it is defined: ``cli.main`` imports a
command's module only when that command runs (or ``--help`` lists them all), so an
officer's ``cityledger shipment provenance`` does not pay for the audit's PDF renderer,
the node, the benchmarks and the rest (about half a second a run, measured: docs/cli.md).

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

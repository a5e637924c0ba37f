"""The officer and auditor commands, added to the ``cityledger`` group by ``cli.main``.

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
=======================  ==================================================

Every answer is checked by :mod:`lightclient` against the genesis validator set;
``docs/cli.md`` shows each command with its output.
"""

from __future__ import annotations

import click

from cli import (
    audit_cmd,
    bench_cmd,
    energy_cmd,
    evidence_cmd,
    explorer_cmd,
    genesis_cmd,
    gov_cmd,
    keys_cmd,
    org_cmd,
    permit_cmd,
    proof_cmd,
    query_cmd,
    shipment_cmd,
    tx_cmd,
    validators_cmd,
)


def register(cli: click.Group) -> None:
    tx_cmd.tx.add_command(query_cmd.tx_show)
    for command in (
        keys_cmd.keys,
        genesis_cmd.genesis,
        tx_cmd.tx,
        query_cmd.status,
        query_cmd.block,
        shipment_cmd.shipment,
        org_cmd.org,
        permit_cmd.permit,
        explorer_cmd.explorer,
        energy_cmd.energy,
        audit_cmd.audit,
        proof_cmd.proof,
        evidence_cmd.evidence,
        gov_cmd.gov,
        validators_cmd.validators,
        bench_cmd.bench,
    ):
        cli.add_command(command)

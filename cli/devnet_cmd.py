"""``cityledger devnet up|status|down|logs``: a local network of real node processes."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import click
from rich.table import Table

from cli.output import console, fail, print_json
from devnet import layout, processes
from devnet.layout import Network

DEFAULT_HOME = "./devnet-data"


@click.group()
def devnet() -> None:
    """Run a local multi-validator network on loopback."""


@devnet.command()
@click.option("--validators", default=4, show_default=True, help="Number of validators.")
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
@click.option("--detach", is_flag=True, help="Return once the network commits; leave it running.")
@click.option("--demo", is_flag=True, help="Load the demo scenario (Busan and Sejong).")
@click.option(
    "--base-port", default=26600, show_default=True, help="p2p ports start here, API ports at +100."
)
@click.option(
    "--timeout",
    "timeout_s",
    default=60.0,
    show_default=True,
    help="Seconds to wait for the first commit.",
)
def up(
    validators: int, home: str, detach: bool, demo: bool, base_port: int, timeout_s: float
) -> None:
    """Generate (or resume) a network, start every node, wait until it commits."""
    home = os.path.abspath(home)
    if os.path.exists(os.path.join(home, "network.json")):
        network = Network.load(home)
        console.print(f"resuming the devnet at {home} ({len(network.nodes)} validators)")
    else:
        network = layout.generate(
            home, validators, base_port=base_port, genesis_time_ms=int(time.time() * 1000)
        )
        console.print(f"created a {validators}-validator devnet at {home}")
    running = [n.name for n in network.nodes if processes.is_running(n.pid)]
    if running:
        fail(f"nodes {', '.join(running)} are already running; `cityledger devnet down` first")
    try:
        for entry in network.nodes:
            processes.start_node(entry)
        network.save()
        with console.status("waiting for the first commit…"):
            ok = processes.wait_for_height(network, 1, timeout_s)
        if not ok:
            _show(network)
            raise click.ClickException(
                f"the network did not commit within {timeout_s:.0f} s; see the logs in "
                f"{home}/<node>/node.log"
            )
        if demo:
            from devnet.loader import load_demo

            load_demo(network)
    except BaseException:
        processes.stop_all(network)
        raise
    _show(network)
    console.print(
        f"logs: {home}/<node>/node.log   (`cityledger devnet logs {network.nodes[0].name}`)"
    )
    _print_next_steps(network, demo)
    if detach:
        console.print("[green]running in the background[/]; stop with `cityledger devnet down`")
        return
    console.print("press Ctrl-C to stop every node")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            time.sleep(1)
            dead = [n.name for n in network.nodes if not processes.is_running(n.pid)]
            if dead:
                console.print(f"[red]node(s) {', '.join(dead)} exited[/]; see their node.log")
                break
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        processes.stop_all(network)
        console.print("all nodes stopped")


@devnet.command()
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(home: str, as_json: bool) -> None:
    """Per node: name, API URL, pid, height, peers."""
    network = Network.load(os.path.abspath(home))
    if as_json:
        print_json([_row(n) for n in network.nodes])
        return
    _show(network)


@devnet.command()
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
def down(home: str) -> None:
    """Stop every node of the devnet (by the pids it recorded)."""
    network = Network.load(os.path.abspath(home))
    processes.stop_all(network)
    console.print("all nodes stopped")


@devnet.command()
@click.argument("node_name")
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
@click.option("-n", "lines", default=50, show_default=True, help="Lines from the end.")
def logs(node_name: str, home: str, lines: int) -> None:
    """Print the end of one node's log."""
    entry = Network.load(os.path.abspath(home)).node(node_name)
    path = os.path.join(entry.home, "node.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            tail = f.readlines()[-lines:]
    except FileNotFoundError:
        fail(f"no log yet at {path}")
    sys.stdout.writelines(tail)


def _row(entry: layout.NodeEntry) -> dict[str, Any]:
    status = processes.node_status(entry) if processes.is_running(entry.pid) else None
    return {
        "name": entry.name,
        "api": entry.url,
        "pid": entry.pid if processes.is_running(entry.pid) else None,
        "height": None if status is None else status.get("height"),
        "peers": None if status is None else len(status.get("peers", [])),
        "home": entry.home,
    }


def _show(network: Network) -> None:
    table = Table(title=f"devnet {network.chain_id}")
    for col in ("node", "API URL", "pid", "height", "peers"):
        table.add_column(col)
    for entry in network.nodes:
        row = _row(entry)
        table.add_row(
            row["name"],
            row["api"],
            str(row["pid"] or "stopped"),
            str(row["height"] if row["height"] is not None else "-"),
            str(row["peers"] if row["peers"] is not None else "-"),
        )
    console.print(table)


def _print_next_steps(network: Network, demo: bool) -> None:
    url = network.nodes[0].url
    rel = os.path.relpath(network.home)
    # Show the command as it can be typed here (e.g. .venv/bin/cityledger after `make devnet`).
    exe = os.path.relpath(sys.argv[0]) if os.path.basename(sys.argv[0]) == "cityledger" else ""
    exe = exe if exe and not exe.startswith("..") else "cityledger"
    genesis = os.path.join(rel, network.nodes[0].name, "genesis.json")
    console.print("\n[bold]try next[/]")
    console.print(f"  {exe} status --node {url}")
    keys = os.path.join(rel, "keys")
    console.print(
        f"  (each founding agency's admin key: {keys}/<org>-admin.json; demo keys, public)"
    )
    if demo:
        from devnet.demo import demo_summary
        from devnet.loader import demo_key_path

        summary = demo_summary()
        officer = os.path.relpath(demo_key_path(network, "customs-officer"))
        common = f"--node {url} --genesis {genesis}"
        console.print(
            f"  {exe} shipment provenance {summary['long_history_shipment']} "
            f"{common} --key {officer}"
        )
        console.print(f"  {exe} shipment find --status held {common} --key {officer}")
        console.print(f"  {exe} permit check {summary['permit']} {common}")
        auditor = os.path.relpath(demo_key_path(network, "auditor"))
        console.print(f"  {exe} audit verify {common} --key {auditor}")
    else:
        console.print(f"  {exe} audit verify --node {url} --genesis {genesis}")

"""``cityledger devnet up|status|down|logs``: a local network of real node processes."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import click
from rich.table import Table

from cli.interrupt import sigterm_interrupts
from cli.output import console, err_console, fail, print_json
from devnet import layout, processes
from devnet.layout import Network
from devnet.ports import PortsBusy, check_free, wanted_addresses
from node.config import Home

DEFAULT_HOME = "./devnet-data"
FOLLOW_POLL_S = 0.5


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
    network = _network(home, validators, base_port)
    # SIGTERM stops the nodes as Ctrl-C does, from the first one started: without, a
    # SIGTERM while the network started or loaded its demo left the nodes running.
    sigterm_interrupts()
    try:
        _start_and_wait(network, timeout_s)
        if demo:
            from devnet.loader import load_demo

            load_demo(network)
    except BaseException:
        _stop(network)
        raise
    if detach:
        _announce(network, demo)
        console.print("[green]running in the background[/]; stop with `cityledger devnet down`")
        return
    try:
        _announce(network, demo)
        console.print("press Ctrl-C to stop every node")
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
        _stop(network)
        console.print("all nodes stopped")


def _announce(network: Network, demo: bool) -> None:
    _show(network)
    console.print(
        f"logs: {network.home}/<node>/node.log   (`cityledger devnet logs -f`)", soft_wrap=True
    )
    _print_next_steps(network, demo)


def _stop(network: Network) -> None:
    """Stop every node. The process is ending: a second SIGTERM (a supervisor's) is
    ignored from here; a Ctrl-C waits until every node is stopped (stop_nodes)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    processes.stop_all(network)


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
@click.option("--name", required=True, help="The new node's name (unique in the devnet).")
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
@click.option("--node-home", default=None, help="Its home (default: <home>/<name>).")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Catch-up wait.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--state-sync",
    is_flag=True,
    help="Start from a peer's state snapshot (checked from genesis), then catch up the "
    "blocks after it, instead of replaying the chain from genesis.",
)
def join(
    name: str, home: str, node_home: str | None, timeout_s: float, as_json: bool, state_sync: bool
) -> None:
    """Start a new node with its own fresh key as a non-validator of a running devnet;
    it catches up and keeps running (a governance change can then make it a validator)."""
    from devnet.join import join as join_devnet

    network = Network.load(os.path.abspath(home))
    entry = join_devnet(network, name, node_home, state_sync=state_sync)
    target = max((processes.node_status(n) or {}).get("height", 0) for n in network.nodes)
    with err_console.status(f"{name} is catching up to height {target}…"):
        caught_up = processes.wait_for_height(Network(network.home, network.chain_id, [entry]),
                                              target, timeout_s)  # fmt: skip
    if not caught_up:
        fail(f"{name} did not reach height {target} within {timeout_s:.0f} s: "
             f"{processes.last_log_line(entry)}")  # fmt: skip
    doc = {"name": entry.name, "public_key": _public_key(entry), "p2p": entry.p2p,
           "api": entry.url, "pid": entry.pid}  # fmt: skip
    if as_json:
        print_json(doc)
        return
    console.print(
        f"[green]✔[/] {name} joined as a non-validator and caught up to height {target}: "
        f"key {doc['public_key']}, API {entry.url}, pid {entry.pid}",
        soft_wrap=True,
    )
    console.print(
        "to make it a validator: cityledger gov propose validator-add --public-key "
        f"{doc['public_key']} --name {name} --power 1 --org ORG --key ADMIN_KEY --node "
        f"{network.nodes[0].url}, then approvals from the founding agencies",
        soft_wrap=True,
    )


def _public_key(entry: layout.NodeEntry) -> str:
    from cli.keys_cmd import public_key_of

    return public_key_of(Home(entry.home).key).hex()


@devnet.command()
@click.argument("node_name", required=False)
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
@click.option("-n", "lines", default=50, show_default=True, help="Lines from the end.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
def logs(node_name: str | None, home: str, lines: int, follow: bool) -> None:
    """The end of one node's log, or of every node's (each line after its node's name)."""
    network = Network.load(os.path.abspath(home))
    entries = [network.node(node_name)] if node_name else network.nodes
    tag = {e.name: "" if node_name else f"{e.name:<10} " for e in entries}
    files = {}
    for entry in entries:
        path = os.path.join(entry.home, "node.log")
        try:
            f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - kept open
        except FileNotFoundError:
            if node_name:
                fail(f"no log yet at {path}")
            continue
        files[entry.name] = (entry, f)
        existing = f.readlines()  # read to the end, where --follow goes on
        for line in existing[max(0, len(existing) - lines) :]:
            sys.stdout.write(tag[entry.name] + line)
    sys.stdout.flush()
    try:
        while follow:
            time.sleep(FOLLOW_POLL_S)
            for entry, f in files.values():
                for line in f.readlines():
                    sys.stdout.write(tag[entry.name] + line)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        for _entry, f in files.values():
            f.close()


def _network(home: str, validators: int, base_port: int) -> Network:
    """The devnet at ``home`` (resumed) or a new one, its addresses checked free first."""
    if os.path.exists(os.path.join(home, "network.json")):
        network = Network.load(home)
        running = [n.name for n in network.nodes if processes.is_running(n.pid)]
        if running:
            fail(f"nodes {', '.join(running)} are already running; `cityledger devnet down` first")
        _check_ports([(n.name, n.p2p, n.api) for n in network.nodes], network.genesis_hash())
        console.print(f"resuming the devnet at {home} ({len(network.nodes)} validators)")
        return network
    names = layout.node_names(validators)
    planned = [(n, *layout.node_addresses(i, base_port)) for i, n in enumerate(names)]
    _check_ports(planned, None)
    network = layout.generate(
        home, validators, base_port=base_port, genesis_time_ms=int(time.time() * 1000)
    )
    console.print(f"created a {validators}-validator devnet at {home}")
    return network


def _start_and_wait(network: Network, timeout_s: float) -> None:
    """Start every node; wait for the first commit; name any node that exited."""
    for entry in network.nodes:
        processes.start_node(entry)
    network.save()
    with console.status("waiting for the first commit…"):
        ok = processes.wait_for_height(network, 1, timeout_s)
    if not ok:
        _show(network)
        dead = [
            f"{n.name} exited: {processes.last_log_line(n)}"
            for n in network.nodes
            if not processes.is_running(n.pid)
        ]
        raise click.ClickException(
            f"the network did not commit within {timeout_s:.0f} s"
            + "".join(f"; {line}" for line in dead)
            + f"; see the logs in {network.home}/<node>/node.log"
        )
    _confirm_ours(network)


def _check_ports(nodes: list[tuple[str, str, str]], genesis_hash: str | None) -> None:
    """Refuse, before anything starts or is written, addresses another process holds."""
    try:
        check_free(wanted_addresses(nodes), genesis_hash, processes.status_at)
    except PortsBusy as exc:
        fail(str(exc))


def _confirm_ours(network: Network) -> None:
    """Every node process is alive and its API serves this devnet's genesis (not another
    network's that took a port between the check and the start)."""
    ours = network.genesis_hash()
    for entry in network.nodes:
        status = processes.node_status(entry)
        if not processes.is_running(entry.pid):
            raise click.ClickException(
                f"{entry.name} exited: {processes.last_log_line(entry)} "
                f"(the whole log: {entry.home}/node.log)"
            )
        if status is None or status.get("genesis_hash") != ours:
            raise click.ClickException(
                f"{entry.url} answers for another chain (genesis "
                f"{(status or {}).get('genesis_hash')}), not this devnet's {ours}"
            )


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
    console.print(f"  {exe} status --node {url}", soft_wrap=True)
    keys = os.path.join(rel, "keys")
    console.print(
        f"  (each founding agency's admin key: {keys}/<org>-admin.json; demo keys, public)",
        soft_wrap=True,
    )
    if demo:
        from devnet.demo import demo_summary
        from devnet.loader import demo_key_path
        from ledger.genesis import Genesis
        from node.api.explorer_link import permit_page_url

        summary = demo_summary()
        officer = os.path.relpath(demo_key_path(network, "customs-officer"))
        common = f"--node {url} --genesis {genesis}"
        console.print(
            f"  {exe} shipment provenance {summary['long_history_shipment']} "
            f"{common} --key {officer}",
            soft_wrap=True,
        )
        console.print(
            f"  {exe} shipment find --status held {common} --key {officer}", soft_wrap=True
        )
        console.print(f"  {exe} permit check {summary['permit']} {common}", soft_wrap=True)
        page = permit_page_url(url, str(summary["permit"]), Genesis.load(genesis).hash)
        console.print(
            f"  (the demo permit's page, verified in your browser:)\n  {page}", soft_wrap=True
        )
        auditor = os.path.relpath(demo_key_path(network, "auditor"))
        console.print(f"  {exe} audit verify {common} --key {auditor}", soft_wrap=True)
    else:
        console.print(f"  {exe} audit verify --node {url} --genesis {genesis}", soft_wrap=True)

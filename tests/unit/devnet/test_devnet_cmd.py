"""``devnet logs [-f]`` and the "try next" lines (cli/devnet_cmd.py), on a devnet laid out
on disk (no node is started)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cli import devnet_cmd
from devnet import layout
from devnet.layout import Network
from ledger.genesis import Genesis
from tests.unit.cli.kit import message, run


@pytest.fixture
def network(tmp_path: Path) -> Network:
    net = layout.generate(str(tmp_path / "devnet"), 4, base_port=40000, genesis_time_ms=0)
    for i, entry in enumerate(net.nodes):
        Path(entry.home, "node.log").write_text(
            "".join(f"{entry.name} line {n}\n" for n in range(i + 3))
        )
    return net


def test_logs_of_one_node_and_of_every_node(network: Network) -> None:
    one = run(["devnet", "logs", "sejong-1", "--home", network.home, "-n", "2"])
    assert one.exit_code == 0, message(one)
    assert one.output == "sejong-1 line 2\nsejong-1 line 3\n"
    every = run(["devnet", "logs", "--home", network.home, "-n", "1"])
    assert every.exit_code == 0, message(every)
    assert every.output.splitlines() == [
        f"{n.name:<10} {n.name} line {i + 2}" for i, n in enumerate(network.nodes)
    ]


def test_follow_prints_what_the_nodes_write_until_ctrl_c(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps = []

    def nap(_seconds: float) -> None:
        naps.append(_seconds)
        if len(naps) == 1:
            with open(Path(network.nodes[2].home, "node.log"), "a") as f:
                f.write("heartbeat: height 7\n")
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(devnet_cmd.time, "sleep", nap)
    result = run(["devnet", "logs", "-f", "--home", network.home, "-n", "0"])
    assert result.exit_code == 0, message(result)
    assert result.output == f"{network.nodes[2].name:<10} heartbeat: height 7\n"


def test_a_missing_node_log_is_named(network: Network) -> None:
    Path(network.nodes[0].home, "node.log").unlink()
    result = run(["devnet", "logs", network.nodes[0].name, "--home", network.home])
    assert result.exit_code == 1 and "no log yet" in result.output


def test_try_next_commands_are_never_broken_across_lines(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(devnet_cmd, "console", Console(file=out, width=80))
    devnet_cmd._print_next_steps(network, demo=True)
    lines = out.getvalue().splitlines()
    commands = [line for line in lines if line.startswith("  cityledger ")]
    assert len(commands) == 5
    assert all(line.count("--") >= 2 for line in commands[1:])
    assert any(len(line) > 80 for line in commands), "long enough that wrapping would break it"
    allowed = ("  cityledger", "try next", "  (", "  http://")
    assert all(line.startswith(allowed) or not line for line in lines)
    genesis = Genesis.load(str(Path(network.nodes[0].home, "genesis.json"))).hash.hex()
    page = f"  {network.nodes[0].url}/explorer/permits/BSN-BLD-0001?genesis={genesis}"
    assert page in lines, "the explorer URL of the demo permit, on one line"

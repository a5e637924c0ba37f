"""A devnet's ports are checked before anything starts; a busy one is named with its
holder (devnet/ports.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from devnet.ports import PortsBusy, check_free, is_free, wanted_addresses


@pytest.fixture
def listener() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_a_listener_makes_a_port_busy_and_a_closed_one_is_free(listener: str) -> None:
    assert not is_free(listener)
    assert is_free(free_address())


def test_every_busy_address_is_named_with_what_answers_there(listener: str) -> None:
    ours = "aa" * 32
    answers: dict[str, dict[str, Any] | None] = {f"http://{listener}": None}
    nodes = [("busan-0", free_address(), listener)]
    with pytest.raises(PortsBusy) as refused:
        check_free(wanted_addresses(nodes), ours, answers.get)
    text = str(refused.value)
    assert f"{listener} (busan-0's API) is in use by another program" in text
    assert "--base-port" in text and "cityledger devnet down --home DIR" in text
    answers[f"http://{listener}"] = {"chain_id": "other-net", "genesis_hash": "bb" * 32}
    with pytest.raises(
        PortsBusy, match=r"CityLedger node of another chain \(other-net, genesis bbbb"
    ):
        check_free(wanted_addresses(nodes), ours, answers.get)
    answers[f"http://{listener}"] = {"chain_id": "cityledger-devnet", "genesis_hash": ours}
    with pytest.raises(PortsBusy, match="a node of this very devnet"):
        check_free(wanted_addresses(nodes), ours, answers.get)


def test_a_busy_peer_port_is_named_without_asking_it(listener: str) -> None:
    def never(url: str) -> dict[str, Any] | None:
        raise AssertionError(f"asked {url}")

    with pytest.raises(PortsBusy, match=rf"{listener} \(sejong-1's peer links\) is in use\."):
        check_free(wanted_addresses([("sejong-1", listener, free_address())]), None, never)


def test_free_addresses_pass() -> None:
    check_free(wanted_addresses([("busan-0", free_address(), free_address())]), None, dict().get)

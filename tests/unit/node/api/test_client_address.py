"""Per-client bounds behind a reverse proxy: the client a trusted proxy names in
``X-Forwarded-For``, and never what a client says about itself."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from node.api.app import make_app
from node.api.client_address import MAX_HOPS, forwarded_client, parse_networks
from node.config import APIConfig
from tests.unit.clock_kit import ManualClock
from tests.unit.node.api.conftest import Clock, TestNode

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert forwarded_client("127.0.0.1", ["203.0.113.7"], ()) == "127.0.0.1"


def test_a_request_not_from_a_proxy_is_its_peer_whatever_it_says() -> None:
    assert forwarded_client("198.51.100.9", ["203.0.113.7"], PROXIES) == "198.51.100.9"


def test_the_proxy_names_the_client() -> None:
    assert forwarded_client("127.0.0.1", ["203.0.113.7"], PROXIES) == "203.0.113.7"


def test_read_from_the_right_past_trusted_proxies_only() -> None:
    """What a client wrote itself (to the left of what the proxies appended) is not believed."""
    header = ["198.51.100.1, 203.0.113.7", "10.1.2.3"]  # two lines: one list
    assert forwarded_client("10.0.0.1", header, PROXIES) == "203.0.113.7"
    assert forwarded_client("10.0.0.1", ["10.9.9.9, 10.1.2.3"], PROXIES) == "10.9.9.9"


def test_an_address_that_does_not_parse_stops_at_the_last_trusted_hop() -> None:
    assert forwarded_client("127.0.0.1", ["garbage"], PROXIES) == "127.0.0.1"
    assert forwarded_client("10.0.0.1", ["203.0.113.7, unknown"], PROXIES) == "10.0.0.1"
    assert forwarded_client("10.0.0.1", ["unknown, 10.2.2.2"], PROXIES) == "10.2.2.2"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert forwarded_client("127.0.0.1", ["203.0.113.7:5000"], PROXIES) == "203.0.113.7"
    assert forwarded_client("127.0.0.1", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert forwarded_client("127.0.0.1", ["2001:DB8::1"], PROXIES) == "2001:db8::1"
    assert forwarded_client("::ffff:127.0.0.1", ["203.0.113.7"], PROXIES) == "203.0.113.7"
    assert forwarded_client("fd00::5", ["203.0.113.7"], PROXIES) == "203.0.113.7"


def test_only_the_last_hops_are_looked_at() -> None:
    """A header of thousands of trusted hops costs no more than MAX_HOPS of them."""
    hops = ", ".join(["10.0.0.3"] * 5000)
    assert forwarded_client("10.0.0.1", [f"203.0.113.7, {hops}"], PROXIES) == "10.0.0.3"
    near = ", ".join(["10.0.0.3"] * (MAX_HOPS - 1))
    assert forwarded_client("10.0.0.1", [f"203.0.113.7, {near}"], PROXIES) == "203.0.113.7"


async def _statuses(app_config: APIConfig, node: TestNode, clock: Clock) -> list[int]:
    """Two requests named as client A by the proxy header, then one as client B."""
    app = make_app(node, app_config, clock=clock, monotonic=ManualClock(100.0))
    statuses = []
    async with TestClient(TestServer(app)) as client:
        for who in ("203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"):
            response = await client.get("/v1/status", headers={"X-Forwarded-For": who})
            statuses.append(response.status)
    return statuses


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(
    node: TestNode, clock: Clock
) -> None:
    config = APIConfig(rate_limit_per_s=1.0, rate_limit_burst=2, trusted_proxies=["127.0.0.1"])
    assert await _statuses(config, node, clock) == [200, 200, 429, 200]


async def test_without_trusted_proxies_a_forged_header_gets_no_bucket_of_its_own(
    node: TestNode, clock: Clock
) -> None:
    config = APIConfig(rate_limit_per_s=1.0, rate_limit_burst=2)
    assert await _statuses(config, node, clock) == [200, 200, 429, 429]


_TRUSTED = ["127.0.0.1", "10.0.0.1", "10.4.4.4", "fd00::5"]  # all within PROXIES
_KNOWN = [*_TRUSTED, "203.0.113.7", "198.51.100.1", "2001:db8::1"]
_HOPS = st.lists(st.sampled_from([*_KNOWN, "unknown", "", "1.2.3", "[::1"]))


@given(peer=st.sampled_from(_KNOWN), hops=_HOPS, spoofed=_HOPS)
def test_the_client_is_never_what_an_untrusted_party_wrote(
    peer: str, hops: list[str], spoofed: list[str]
) -> None:
    """Whatever a client prepends (``spoofed``) and whatever the proxies append (``hops``):
    the answer is the peer when the peer is not a trusted proxy; otherwise the first
    untrusted address from the right (or the last trusted one before an address that
    does not parse, or the 16th), never one written further left by an untrusted party."""
    header = [", ".join(spoofed + hops)] if spoofed or hops else []
    client = forwarded_client(peer, header, PROXIES)
    if peer not in _TRUSTED:
        assert client == peer
        return
    believed = [peer]  # the path read from the right, as far as it can be believed
    for hop in reversed(spoofed + hops):
        if hop not in _KNOWN:
            break
        believed.append(hop)
        if hop not in _TRUSTED:
            break
    assert client == believed[min(len(believed) - 1, MAX_HOPS)]

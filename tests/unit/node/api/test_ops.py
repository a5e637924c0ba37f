"""Health, Prometheus metrics and their runtime hooks, and the error middleware."""

from __future__ import annotations

import logging
import platform

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from ledger.encoding import decode
from node.api.app import make_app, metrics_of
from node.api.metrics import Metrics
from node.config import APIConfig
from tests.unit.node.api.conftest import (
    VALIDATORS,
    Client,
    Clock,
    TestNode,
    assert_error,
    milestone,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_healthz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["height"] == 9


async def test_healthz_without_a_head_is_503(empty_client: Client) -> None:
    response = await empty_client.get("/healthz")
    await assert_error(response, 503, "unavailable")


async def test_metrics_exposition(client: Client) -> None:
    assert (await client.get("/v1/blocks/2")).status == 200
    assert (await client.get("/v1/blocks/99")).status == 404
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    values = samples(await response.text())
    assert values[("cityledger_height", ())] == 9
    assert values[("cityledger_mempool_size", ())] == 0
    assert values[("cityledger_mempool_dropped", (("reason", "expired"),))] == 0
    assert values[("cityledger_mempool_dropped", (("reason", "evicted"),))] == 0
    route = (("method", "GET"), ("route", "/v1/blocks/{height}"), ("status", "200"))
    assert values[("cityledger_http_request_duration_seconds_count", route)] == 1
    missing = (("method", "GET"), ("route", "/v1/blocks/{height}"), ("status", "404"))
    assert values[("cityledger_http_request_duration_seconds_count", missing)] == 1


async def test_runtime_hooks_show_in_metrics(client: Client) -> None:
    metrics = metrics_of(client.app)
    metrics.observe_commit(height=10, txs=7, block_time_s=1.5, rounds=2)
    metrics.observe_commit(height=11, txs=3, block_time_s=0.9, rounds=1)
    metrics.set_peers(3)
    metrics.set_sync(0.25)
    values = samples(metrics.render().decode())
    assert values[("cityledger_txs_committed_total", ())] == 10
    assert values[("cityledger_peers", ())] == 3
    assert values[("cityledger_sync_progress", ())] == 0.25
    assert values[("cityledger_last_height_rounds", ())] == 1
    assert values[("cityledger_rounds_per_height_count", ())] == 2
    assert values[("cityledger_block_time_seconds_sum", ())] == pytest.approx(2.4)


def test_each_app_has_its_own_registry(node: TestNode) -> None:
    a, b = make_app(node, APIConfig()), make_app(node, APIConfig())
    metrics_of(a).set_peers(5)
    assert samples(metrics_of(b).render().decode())[("cityledger_peers", ())] == 0


def test_sync_progress_is_clamped() -> None:
    m = Metrics()
    m.set_sync(7)
    assert m.sync_progress._value.get() == 1.0
    m.set_sync(-1)
    assert m.sync_progress._value.get() == 0.0


async def test_unknown_route_and_method_are_json(client: Client) -> None:
    response = await client.get("/v1/nothing-here")
    await assert_error(response, 404, "not_found")
    response = await client.delete("/v1/txs")
    await assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


async def test_our_bug_is_a_logged_500_and_the_node_keeps_serving(
    client: Client, node: TestNode, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    node.status = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="cityledger.api"):
        response = await client.get("/v1/status", headers={"Accept": "application/msgpack"})
    assert response.status == 500
    assert decode(await response.read()) == {
        "error": {"code": "internal", "message": "internal error; the node logged it"}
    }
    assert "boom" in caplog.text
    assert (await client.get("/healthz")).status == 200


async def test_errors_render_as_msgpack_when_asked(client: Client) -> None:
    response = await client.get("/v1/blocks/abc", headers={"Accept": "application/msgpack"})
    assert response.status == 400
    assert decode(await response.read())["error"]["code"] == "malformed"


async def test_shutdown_closes_open_subscriptions(node: TestNode, clock: Clock) -> None:
    client = TestClient(TestServer(make_app(node, APIConfig(), clock=clock)))
    await client.start_server()
    ws = await client.ws_connect("/v1/events")
    await ws.send_json({"blocks": True})
    await ws.receive_json(timeout=5)
    await client.close()
    msg = await ws.receive(timeout=5)
    assert ws.closed or msg.type.name in ("CLOSE", "CLOSED", "CLOSING")


async def test_mempool_drops_show_in_metrics(client: Client, node: TestNode) -> None:
    """Expired and evicted pending transactions (the mempool's pinning limits) are visible."""
    node.mempool.add(milestone(node), now=0.0)
    assert len(node.mempool) == 1
    node.mempool.expire(1e9)  # long past [mempool] pending_ttl_s
    values = samples(await (await client.get("/metrics")).text())
    assert values[("cityledger_mempool_size", ())] == 0
    assert values[("cityledger_mempool_dropped", (("reason", "expired"),))] == 1
    assert values[("cityledger_mempool_dropped", (("reason", "evicted"),))] == 0


async def test_metrics_sample_block_age_links_and_missed_votes(
    client: Client, node: TestNode, clock: Clock
) -> None:
    """Sampled at scrape from the node's own records: every stored certificate of the
    standard chain is signed by validators 0..2, so validator-3 missed each of 9 heights."""
    values = samples(await (await client.get("/metrics")).text())
    head = node.chain.head()
    age = (clock.now_ms - head.time_ms) / 1000
    assert values[("cityledger_last_block_age_seconds", ())] == pytest.approx(age)
    missed = {
        labels[0][1]: value
        for (name, labels), value in values.items()
        if name == "cityledger_validator_missed_votes_total"
    }
    assert missed == {"validator-0": 0, "validator-1": 0, "validator-2": 0, "validator-3": 9}
    links = {
        labels[0][1]: value
        for (name, labels), value in values.items()
        if name == "cityledger_peer_connected"
    }
    assert links == {"validator-0": 1, "validator-1": 1, "validator-2": 1, "validator-3": 0}
    assert values[("process_resident_memory_bytes", ())] > 10_000_000
    assert ("process_cpu_seconds_total", ()) in values

    node.linked = VALIDATORS[1:]  # validator-0 went away, validator-3 came
    node.commit([])  # height 10, certified by validators 0..2 again
    again = samples(await (await client.get("/metrics")).text())
    assert again[("cityledger_validator_missed_votes_total", (("validator", "validator-3"),))] == 10
    assert again[("cityledger_peer_connected", (("validator", "validator-0"),))] == 0
    assert again[("cityledger_peer_connected", (("validator", "validator-3"),))] == 1
    once_more = samples(await (await client.get("/metrics")).text())
    assert (
        once_more[("cityledger_validator_missed_votes_total", (("validator", "validator-3"),))]
        == 10
    )


async def test_bounded_structures_show_in_metrics(client: Client) -> None:
    def part(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
        unit = "bytes" if name == "rendered_answers" else "entries"
        labels = (("part", name), ("unit", unit))
        assert values[("cityledger_bounded_limit", labels)] > 0
        return values[("cityledger_bounded_size", labels)]

    before = samples(await (await client.get("/metrics")).text())
    assert part(before, "rendered_answers") == 0
    assert part(before, "mempool_txs") == 0  # the node's own parts, through NodeHandle
    assert (await client.get("/v1/blocks/2")).status == 200  # rendered and kept
    after = samples(await (await client.get("/metrics")).text())
    assert part(after, "rendered_answers") > 0
    assert part(after, "rate_limit_clients") == 1  # this test's one client address


async def test_the_c_allocators_bytes_show_in_metrics_where_glibc_tells_them(
    client: Client,
) -> None:
    values = samples(await (await client.get("/metrics")).text())
    shown = {
        labels[0][1]: v for (name, labels), v in values.items() if name == "cityledger_malloc_bytes"
    }
    libc, version = platform.libc_ver()
    if libc == "glibc" and tuple(map(int, version.split(".")[:2])) >= (2, 33):  # mallinfo2
        assert shown.keys() == {"in_use", "free", "mapped"}
        assert shown["in_use"] > 1_000_000  # an interpreter with a node in it
    else:
        assert shown == {}


async def test_the_time_spent_trimming_the_heap_shows_in_metrics(client: Client) -> None:
    """Counted from the node's start (node/heap_trim.py: the first trim comes one
    ``[storage] heap_trim_s`` after it, so a fresh node shows 0)."""
    values = samples(await (await client.get("/metrics")).text())
    assert values[("cityledger_heap_trim_seconds_total", ())] == 0.0

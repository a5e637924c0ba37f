"""Per-client token buckets, alone and behind the app (429 with Retry-After)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import make_app, metrics_of
from node.api.ratelimit import RateLimiter
from node.api.waits import retry_after_header, retry_headers
from node.config import APIConfig
from tests.unit.clock_kit import ManualClock
from tests.unit.node.api.conftest import Clock, Scenario, TestNode


def test_bucket_allows_a_burst_then_refills() -> None:
    t = ManualClock(100.0)
    limiter = RateLimiter(2.0, 3, now=t)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # other clients have their own bucket
    t.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    t.now += 1000
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # capped at the burst
    assert limiter.take("a") > 0
    assert limiter.limited == 3


def test_bucket_table_is_bounded() -> None:
    limiter = RateLimiter(1.0, 1, now=ManualClock(100.0), max_clients=10)
    for i in range(100):
        limiter.take(f"client-{i}")
    assert len(limiter) == 10


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
    with pytest.raises(ValueError):
        RateLimiter(1, 0)


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.3) == "3"


def test_retry_headers_say_the_wait_to_the_millisecond_too() -> None:
    """``Retry-After`` has no fractions: a 0.25 s wait said only as "1" keeps a client
    away four times as long as needed."""
    assert retry_headers(0.25) == {"Retry-After": "1", "Retry-After-Ms": "250"}
    assert retry_headers(2.3) == {"Retry-After": "3", "Retry-After-Ms": "2300"}
    assert retry_headers(0.0001) == {"Retry-After": "1", "Retry-After-Ms": "1"}


async def test_app_answers_429_json_and_spares_ops(
    node: TestNode, scenario: Scenario, clock: Clock
) -> None:
    t = ManualClock(100.0)
    config = APIConfig(rate_limit_per_s=1.0, rate_limit_burst=2)
    app = make_app(node, config, clock=clock, monotonic=t)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/v1/status")).status == 200
        assert (await client.get("/v1/validators")).status == 200
        response = await client.get("/v1/status")
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert 0 < int(response.headers["Retry-After-Ms"]) <= 1000  # the bucket's refill
        assert (await response.json())["error"]["code"] == "rate_limited"
        # health checks and scrapes are not counted against the client
        assert (await client.get("/healthz")).status == 200
        text = await (await client.get("/metrics")).text()
        assert "cityledger_http_rate_limited_total 1.0" in text
        t.now += 1.0
        assert (await client.get("/v1/status")).status == 200
        assert metrics_of(app).rate_limited._value.get() == 1

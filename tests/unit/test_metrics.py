"""shared.metrics: the metric families, timed external calls, health and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from shared import metrics


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def service() -> str:
    """A service label of the test's own, so counters start at zero."""
    return f"probe-{uuid.uuid4().hex[:8]}"


def test_a_family_hands_out_one_child_per_label_values_and_forgets_one() -> None:
    name = service()
    child = metrics.CONSUMER_LAG(name, "hmskort.t.v1", "3")
    assert metrics.CONSUMER_LAG(name, "hmskort.t.v1", "3") is child
    child.set(7)
    labels = {"service": name, "topic": "hmskort.t.v1", "partition": "3"}
    assert value("kortflyt_consumer_lag_messages", **labels) == 7
    metrics.CONSUMER_LAG.forget(name, "hmskort.t.v1", "3")
    assert REGISTRY.get_sample_value("kortflyt_consumer_lag_messages", labels) is None
    metrics.CONSUMER_LAG.forget(name, "hmskort.t.v1", "3")  # twice: nothing to do


def test_a_message_is_counted_by_outcome_and_timed_by_topic() -> None:
    name = service()
    metrics.message_done(name, "hmskort.order.submitted.v1", "handled", 0.004)
    metrics.message_done(name, "hmskort.order.submitted.v1", "handled", 0.2)
    metrics.message_done(name, "hmskort.order.submitted.v1", "duplicate", 0.001)
    topic = {"service": name, "topic": "hmskort.order.submitted.v1"}
    assert value("kortflyt_messages_total", **topic, outcome="handled") == 2
    assert value("kortflyt_messages_total", **topic, outcome="duplicate") == 1
    assert value("kortflyt_handler_seconds_count", **topic) == 3
    assert value("kortflyt_handler_seconds_bucket", **topic, le="0.005") == 2
    assert value("kortflyt_handler_seconds_sum", **topic) == pytest.approx(0.205)


def test_an_external_call_is_timed_and_its_failure_named_by_its_cause() -> None:
    name = service()

    class Unavailable(Exception):
        pass

    with metrics.external_call(name, "aaregisteret"):
        pass
    with (
        pytest.raises(Unavailable),
        metrics.external_call(name, "aaregisteret"),
    ):
        try:
            raise httpx.ReadTimeout("slow")
        except httpx.ReadTimeout as exc:
            raise Unavailable from exc  # the service's wrapper: the cause names the error
    with pytest.raises(Unavailable), metrics.external_call(name, "aaregisteret") as call:
        call.error = "http_503"
        raise Unavailable

    target = {"service": name, "target": "aaregisteret"}
    assert value("kortflyt_external_call_seconds_count", **target, outcome="ok") == 1
    assert value("kortflyt_external_call_seconds_count", **target, outcome="error") == 2
    assert value("kortflyt_external_call_errors_total", **target, error="ReadTimeout") == 1
    assert value("kortflyt_external_call_errors_total", **target, error="http_503") == 1


def test_an_answer_that_is_a_failure_counts_as_an_error_without_an_exception() -> None:
    name = service()
    with metrics.external_call(name, "document_store") as call:
        call.error = "http_502"
    target = {"service": name, "target": "document_store"}
    assert value("kortflyt_external_call_errors_total", **target, error="http_502") == 1
    assert value("kortflyt_external_call_seconds_count", **target, outcome="ok") == 0


async def ok() -> dict[str, Any]:
    return {"ok": True}


async def down() -> dict[str, Any]:
    raise ConnectionRefusedError


async def hangs() -> dict[str, Any]:
    await asyncio.sleep(60)
    return {"ok": True}


async def says_no() -> dict[str, Any]:
    return {"ok": False, "role": "reconnecting"}


async def test_health_is_ok_only_when_every_check_is() -> None:
    assert await metrics.Health("intake", {"database": ok, "outbox_relay": ok}).report() == {
        "service": "intake",
        "status": "ok",
        "checks": {"database": {"ok": True}, "outbox_relay": {"ok": True}},
    }
    health = metrics.Health(
        "intake",
        {"database": down, "kafka_consumer": hangs, "outbox_relay": says_no, "other": ok},
        timeout_s=0.05,
    )
    report = await health.report()
    assert report["status"] == "failing"
    assert report["checks"] == {
        "database": {"ok": False, "error": "ConnectionRefusedError"},
        "kafka_consumer": {"ok": False, "error": "no answer within 0.05 s"},
        "outbox_relay": {"ok": False, "role": "reconnecting"},
        "other": {"ok": True},
    }


def test_the_endpoints_serve_prometheus_text_and_health_with_its_status_code() -> None:
    name = service()
    refreshed: list[bool] = []

    async def refresh() -> None:
        refreshed.append(True)
        metrics.OUTBOX_ROWS(name).set(12)

    healthy = TestClient(metrics.metrics_app(metrics.Health(name, {"database": ok}), refresh))
    scrape = healthy.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
    assert refreshed == [True]  # the levels are read right before the scrape
    [rows] = [s for s in families["kortflyt_outbox_rows"].samples if s.labels["service"] == name]
    assert rows.value == 12
    assert "kortflyt_messages" in families  # declared even before the first message
    assert healthy.get("/health").json() == {
        "service": name,
        "status": "ok",
        "checks": {"database": {"ok": True}},
    }

    failing = TestClient(metrics.metrics_app(metrics.Health(name, {"database": down})))
    response = failing.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "ConnectionRefusedError"}
    assert failing.get("/other").status_code == 404


def test_a_failing_refresh_still_serves_the_counters() -> None:
    async def broken() -> None:
        raise OSError("database away")

    client = TestClient(metrics.metrics_app(metrics.Health("x", {}), broken))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "kortflyt_messages_total" in response.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serving_answers_on_its_port_and_stops_with_the_block() -> None:
    port = free_port()
    app = metrics.metrics_app(metrics.Health("x", {"database": ok}))
    async with metrics.serving("127.0.0.1", port, app), httpx.AsyncClient() as client:
        for _ in range(50):  # the server task starts listening on its first turn
            try:
                response = await client.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert response.status_code == 200
        assert (await client.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200
    with socket.socket() as s:  # closed: the port is free again
        s.bind(("127.0.0.1", port))


async def test_port_zero_serves_nothing_and_a_taken_port_fails_the_start() -> None:
    app = metrics.metrics_app(metrics.Health("x", {}))
    async with metrics.serving("127.0.0.1", 0, app):
        pass
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            async with metrics.serving("127.0.0.1", port, app):
                pass


def test_the_metrics_port_setting_reads_empty_as_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import Settings

    monkeypatch.setenv("KORTFLYT_METRICS_PORT", "")
    assert Settings().metrics_port == 0
    monkeypatch.setenv("KORTFLYT_METRICS_PORT", "9464")
    assert Settings().metrics_port == 9464
    monkeypatch.setenv("KORTFLYT_METRICS_PORT", "70000")
    with pytest.raises(ValueError, match="less than or equal"):
        Settings()

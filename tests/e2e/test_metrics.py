"""/metrics and /health of every service as a real process (deploy.dev gives each its own
port): orders through the whole pipeline move the counters each service reports, with
the right labels, and every service answers /health with 200."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devtools.factories import submitted
from services.notify.templates import MAILED
from shared.events import Status
from shared.reasons import ReasonCode
from shared.topics import (
    CARD_PRODUCED,
    ORDER_ACCEPTED,
    ORDER_APPROVED,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    retry_topic,
)
from tests import corpus
from tests.e2e.conftest import (
    Pipeline,
    all_final,
    as_bytes,
    collect,
    latest_statuses,
    notified_statuses,
    publish,
    run_id,
)
from tests.e2e.test_pipeline import EXPECTED_NOTES

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(pipeline: Pipeline, name: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{pipeline.instance(name).metrics_url}/metrics")
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "the metrics did not get there in time"
        await asyncio.sleep(0.5)


async def test_orders_move_every_services_counters_and_every_service_is_healthy(
    pipeline: Pipeline,
) -> None:
    pipeline.wait_healthy()
    services = ("intake", "registry_check", "production", "notify", "support", "verify")
    before = {name: await scrape(pipeline, name) for name in services}

    run = run_id()
    store = pipeline.profile.docstore_url
    folder = pipeline.profile.state / "docstore"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex[:6]}-flaky.jpg"
    (folder / name).write_bytes(corpus.valid_jpeg())
    async with httpx.AsyncClient(base_url=store) as admin:  # one 503, then the photo
        response = await admin.post("/admin/faults", json={"name": name, "kind": "503", "times": 1})
        assert response.status_code == 201, response.text
    flaky = submitted(f"MET-{run}-DOC")
    flaky["documents"]["photo"] = {
        **flaky["documents"]["photo"],
        "url": f"{store}/docs/{name}",
        "sha256": corpus.sha256(corpus.valid_jpeg()),
    }
    good = [f"MET-{run}-{i}" for i in range(8)]
    poison = f"MET-{run}-POISON"
    orders = [(o, as_bytes(submitted(o))) for o in good] + [(flaky["order_id"], as_bytes(flaky))]
    await publish(pipeline.settings, [*orders, (poison, b"{not json")])
    produced = [*good, flaky["order_id"]]
    n = len(produced)
    found = await collect(
        pipeline.settings, [ORDER_STATUS], {*produced, poison}, all_final({*produced, poison}), 180
    )
    latest = latest_statuses(found[ORDER_STATUS])
    assert {o: latest[o].status for o in produced} == dict.fromkeys(produced, Status.PRODUCED)
    expected = dict.fromkeys(produced, EXPECTED_NOTES)
    assert await notified_statuses(pipeline.settings, produced, expected) == expected
    mails_per_order = len(EXPECTED_NOTES)
    assert Status.PRODUCED.value in EXPECTED_NOTES and Status.PRODUCED in MAILED

    def moved(name: str, metric: str, **labels: str) -> float:
        return get(after[name], metric, **labels) - get(before[name], metric, **labels)

    after: dict[str, Samples] = {}

    async def counted() -> bool:
        for name in ("intake", "registry_check", "production", "notify"):
            after[name] = await scrape(pipeline, name)
        return (
            moved("intake", "kortflyt_messages_total", **handled("intake", ORDER_SUBMITTED)) >= n
            and moved("production", "kortflyt_cards_printed_total", **production()) >= n
            and moved("notify", "kortflyt_emails_sent_total", **mailed()) >= n
        )

    await until(counted)

    # intake: every order handled on its input topic, the poison dead-lettered and counted.
    assert moved("intake", "kortflyt_messages_total", **handled("intake", ORDER_SUBMITTED)) == n
    on_submitted = {"service": "intake", "topic": ORDER_SUBMITTED}
    assert moved("intake", "kortflyt_messages_total", **on_submitted, outcome="invalid") == 1
    schema_invalid = ReasonCode.SCHEMA_INVALID.value
    assert (
        moved("intake", "kortflyt_dead_letters_total", **on_submitted, reason=schema_invalid) == 1
    )
    assert moved("intake", "kortflyt_handler_seconds_count", **on_submitted) >= n + 1
    # The document store's one 503: a retry scheduled, an error counted, then an answer.
    fetch_failed = ReasonCode.DOCUMENT_FETCH_FAILED.value
    retried = moved(
        "intake", "kortflyt_retries_scheduled_total", **on_submitted, reason=fetch_failed
    )
    assert retried == 1
    store_call = {"service": "intake", "target": "document_store"}
    assert (
        moved("intake", "kortflyt_external_call_errors_total", **store_call, error="http_503") == 1
    )
    ok_calls = moved("intake", "kortflyt_external_call_seconds_count", **store_call, outcome="ok")
    assert ok_calls >= 1
    retry_handled = handled("intake", ORDER_SUBMITTED)  # a retry counts under its origin topic
    assert get(after["intake"], "kortflyt_messages_total", **retry_handled) > 0
    assert not any(
        dict(labels).get("topic") == retry_topic("intake")
        for (metric, labels) in after["intake"]
        if metric == "kortflyt_messages_total" and dict(labels).get("outcome") == "handled"
    )

    # registry_check, production and notify: at least each of our orders. The pipeline is
    # shared with the e2e tests before this one, whose late messages (a re-check due now, a
    # retry) may add to these counters meanwhile; intake's input above is ours alone.
    assert (
        moved(
            "registry_check", "kortflyt_messages_total", **handled("registry_check", ORDER_ACCEPTED)
        )
        >= n
    )
    register_calls = total(
        after["registry_check"],
        "kortflyt_external_call_seconds_count",
        service="registry_check",
        outcome="ok",
    )
    assert (
        register_calls
        - total(
            before["registry_check"],
            "kortflyt_external_call_seconds_count",
            service="registry_check",
            outcome="ok",
        )
        >= n
    )
    assert (
        moved("production", "kortflyt_messages_total", **handled("production", ORDER_APPROVED)) >= n
    )
    assert moved("production", "kortflyt_cards_printed_total", **production()) >= n
    # notify: one e-mail per mailed status of each order, through SMTP.
    assert moved("notify", "kortflyt_emails_sent_total", **mailed()) >= n
    sent = total(after["notify"], "kortflyt_emails_sent_total", service="notify") - total(
        before["notify"], "kortflyt_emails_sent_total", service="notify"
    )
    assert sent >= n * mails_per_order
    smtp = {"service": "notify", "target": "smtp", "outcome": "ok"}
    assert moved("notify", "kortflyt_external_call_seconds_count", **smtp) >= n * mails_per_order
    assert moved("notify", "kortflyt_messages_total", **handled("notify", CARD_PRODUCED)) >= n

    # Levels read at scrape time: the outbox drains, intake's lag on its input topic is 0.
    async def drained() -> bool:
        intake = await scrape(pipeline, "intake")
        lags = [
            v
            for (metric, labels), v in intake.items()
            if metric == "kortflyt_consumer_lag_messages"
            and dict(labels)["topic"] == ORDER_SUBMITTED
        ]
        return (
            bool(lags)
            and sum(lags) == 0
            and get(intake, "kortflyt_outbox_rows", service="intake") == 0
        )

    await until(drained)
    # No personal data or order id ever becomes a label value.
    for name in ("intake", "registry_check", "production", "notify"):
        for _metric, labels in after[name]:
            assert not any(run in value for _key, value in labels), labels

    async with httpx.AsyncClient(timeout=10) as client:
        for name in services:
            response = await client.get(f"{pipeline.instance(name).metrics_url}/health")
            assert response.status_code == 200, (name, response.text)
            report = response.json()
            assert report["service"] == name
            assert set(report["checks"]) == {
                "database",
                "kafka_consumer",
                "kafka_producer",
                "outbox_relay",
            }


def handled(service: str, topic: str) -> dict[str, str]:
    return {"service": service, "topic": topic, "outcome": "handled"}


def production() -> dict[str, str]:
    return {"service": "production", "card_type": "construction"}


def mailed() -> dict[str, str]:
    return {"service": "notify", "status": Status.PRODUCED.value}

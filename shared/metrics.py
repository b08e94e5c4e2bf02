"""Metrics (Prometheus, prometheus-client) and health of every process.

Each process serves `/metrics` (Prometheus text format) and `/health` (JSON, 200 or 503)
on KORTFLYT_METRICS_HOST:KORTFLYT_METRICS_PORT (0 or empty: not served), from a small
ASGI app under uvicorn in the process's own event loop: a scrape never blocks the loop
for longer than rendering the text, and health checks await the real thing (a query,
the relay's last round) instead of reading a copy.

The metrics are counted where the event happens (the processor, the relay, the
spooler...); what is a level rather than an event (the outbox backlog, consumer lag) is
read once per scrape by the process's `refresh` hook, never once per message. Labels are
bounded: service, topic (a subscribed one), outcome, reason code, register or other
call target; never an order id, a card number or a person. See docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Generic, Literal, TypeVar

import asyncpg
import uvicorn
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.logging import get_logger

log = get_logger(__name__)

M = TypeVar("M", bound=MetricWrapperBase)

# What became of one consumed message (kortflyt_messages_total's `outcome`).
Outcome = Literal[
    "handled",  # its transaction committed
    "duplicate",  # handled before (inbox): nothing done
    "passed_over",  # not for this service (a route's filter): nothing to do
    "invalid",  # unreadable or invalid: dead-lettered
    "refused",  # a command without support's signature: refused and audited
    "conflict",  # its event_id was handled with other content: dead-lettered
    "retry",  # a transient failure: on the retry topic, or for a person when tries ran out
    "failed",  # the handler raised: redelivered (or dead-lettered after the last try)
]

# Latency buckets in seconds: a message or a call takes milliseconds when all is well and
# up to the timeouts (registers, document store, SMTP: tens of seconds) when it is not.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Family(Generic[M]):
    """A labelled metric with its children cached by label values: `labels()` validates
    and locks on every call; a message's hot path pays a dict lookup instead."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child

    def forget(self, *values: str) -> None:
        """Stop exporting one child (a partition no longer assigned)."""
        if self._children.pop(values, None) is not None:
            self.metric.remove(*values)


# ----------------------------------------------------------------------- messaging

MESSAGES = Family(
    Counter(
        "kortflyt_messages_total",
        "Messages consumed, by what became of them (outcome).",
        ["service", "topic", "outcome"],
    )
)
HANDLER_SECONDS = Family(
    Histogram(
        "kortflyt_handler_seconds",
        "Time from taking a message up to its transaction committed (or its retry,"
        " dead letter or failure recorded).",
        ["service", "topic"],
        buckets=LATENCY_BUCKETS,
    )
)
RETRIES = Family(
    Counter(
        "kortflyt_retries_scheduled_total",
        "Messages put on the service's retry topic after a transient failure.",
        ["service", "topic", "reason"],
    )
)
RETRIES_EXHAUSTED = Family(
    Counter(
        "kortflyt_retries_exhausted_total",
        "Messages whose retries were used up: the order needs a person.",
        ["service", "topic", "reason"],
    )
)
DEAD_LETTERS = Family(
    Counter(
        "kortflyt_dead_letters_total",
        "Messages sent to the service's dead-letter topic, by their first reason code.",
        ["service", "topic", "reason"],
    )
)
BATCH_SIZE = Family(
    Histogram(
        "kortflyt_batch_messages",
        "Messages per group-committed transaction.",
        ["service"],
        buckets=(1, 2, 4, 8, 16, 32, 64, 128),
    )
)
BATCH_COMMIT_FAILURES = Family(
    Counter(
        "kortflyt_batch_commit_failures_total",
        "Group-committed transactions whose commit failed (their messages are redone).",
        ["service"],
    )
)
IN_FLIGHT = Family(
    Gauge(
        "kortflyt_consumer_in_flight_messages",
        "Messages taken up and not yet finished, per consumer group.",
        ["service", "consumer"],
    )
)
CONSUMER_LAG = Family(
    Gauge(
        "kortflyt_consumer_lag_messages",
        "Per assigned partition: the high watermark minus the offset below which every"
        " message is done (what this instance still has to work off).",
        ["service", "topic", "partition"],
    )
)

# ------------------------------------------------------------------------- outbox

OUTBOX_ROWS = Family(
    Gauge("kortflyt_outbox_rows", "Events in the outbox, not yet published.", ["service"])
)
OUTBOX_OLDEST = Family(
    Gauge(
        "kortflyt_outbox_oldest_age_seconds",
        "Age of the oldest event in the outbox (0 when it is empty).",
        ["service"],
    )
)
OUTBOX_SET_ASIDE_ROWS = Family(
    Gauge(
        "kortflyt_outbox_failed_rows",
        "Events Kafka refused for good, kept in outbox_failed for a person.",
        ["service"],
    )
)
OUTBOX_PUBLISHED = Family(
    Counter(
        "kortflyt_outbox_published_total",
        "Events the relay published (this instance, while leading).",
        ["service"],
    )
)
OUTBOX_SET_ASIDE = Family(
    Counter(
        "kortflyt_outbox_set_aside_total",
        "Events the relay moved to outbox_failed because Kafka refused them for good.",
        ["service"],
    )
)

# -------------------------------------------------------------- calls and results

EXTERNAL_SECONDS = Family(
    Histogram(
        "kortflyt_external_call_seconds",
        "Calls to registers, the document store and the SMTP server, by outcome (ok/error).",
        ["service", "target", "outcome"],
        buckets=LATENCY_BUCKETS,
    )
)
EXTERNAL_ERRORS = Family(
    Counter(
        "kortflyt_external_call_errors_total",
        "Failed calls to registers, the document store and the SMTP server, by kind"
        " (the exception's class, or http_<status>).",
        ["service", "target", "error"],
    )
)
CARDS_PRINTED = Family(
    Counter(
        "kortflyt_cards_printed_total",
        "Cards whose print file was spooled and recorded (card.produced written).",
        ["service", "card_type"],
    )
)
PRINT_FAILURES = Family(
    Counter(
        "kortflyt_print_failures_total",
        "Print tries that failed (the card is tried again later).",
        ["service"],
    )
)
EMAILS_SENT = Family(
    Counter(
        "kortflyt_emails_sent_total",
        "E-mails the SMTP server accepted, by the order status they tell of.",
        ["service", "status"],
    )
)
EMAILS_NOT_SENT = Family(
    Counter(
        "kortflyt_emails_not_sent_total",
        "E-mails the SMTP server refused for good, or deferred (tried again later).",
        ["service", "outcome"],
    )
)


def message_done(service: str, topic: str, outcome: Outcome, seconds: float) -> None:
    """One consumed message: what became of it and how long it took."""
    MESSAGES(service, topic, outcome).inc()
    HANDLER_SECONDS(service, topic).observe(seconds)


class Call:
    """One call to something outside (`external_call`): set `error` when the answer is a
    failure that raised nothing (an HTTP status)."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: str | None = None


@contextlib.contextmanager
def external_call(service: str, target: str) -> Iterator[Call]:
    """Time a call to `target` (a register, the document store, SMTP); an exception out
    of the block is an error named by its cause's class (the transport's own error under
    the service's wrapper), or the block sets `call.error`."""
    call = Call()
    started = time.perf_counter()
    try:
        yield call
    except BaseException as exc:
        call.error = call.error or type(exc.__cause__ or exc).__name__
        raise
    finally:
        outcome = "ok" if call.error is None else "error"
        EXTERNAL_SECONDS(service, target, outcome).observe(time.perf_counter() - started)
        if call.error is not None:
            EXTERNAL_ERRORS(service, target, call.error).inc()


# ------------------------------------------------------------------------- health

Check = Callable[[], Awaitable[dict[str, Any]]]
"""One health check: its findings, with "ok" (bool) among them."""


class Health:
    """The process's health: every check, run concurrently, each bounded in time."""

    def __init__(self, service: str, checks: Mapping[str, Check], timeout_s: float = 3.0):
        self.service = service
        self.checks = dict(checks)
        self.timeout_s = timeout_s

    async def _run(self, check: Check) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(check(), self.timeout_s)
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {self.timeout_s:g} s"}
        except Exception as exc:
            return {"ok": False, "error": type(exc).__name__}

    async def report(self) -> dict[str, Any]:
        results = await asyncio.gather(*(self._run(check) for check in self.checks.values()))
        checks = dict(zip(self.checks, results, strict=True))
        healthy = all(result.get("ok") is True for result in results)
        return {"service": self.service, "status": "ok" if healthy else "failing", "checks": checks}


def database_check(pool: asyncpg.Pool) -> Check:
    """PostgreSQL answers a query through `pool`."""

    async def check() -> dict[str, Any]:
        started = time.perf_counter()
        await pool.fetchval("SELECT 1")
        return {"ok": True, "seconds": round(time.perf_counter() - started, 4)}

    return check


# ------------------------------------------------------------------------- serving


def metrics_app(health: Health, refresh: Callable[[], Awaitable[None]] | None = None) -> Starlette:
    """`/metrics` and `/health`. `refresh` sets the gauges that are read, not counted
    (backlog, lag), right before each scrape."""

    async def metrics(_request: Request) -> Response:
        if refresh is not None:
            try:
                await asyncio.wait_for(refresh(), health.timeout_s)
            except Exception as exc:  # the counters are still worth a scrape
                log.warning("metrics.refresh_failed", error=type(exc).__name__)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    async def health_endpoint(_request: Request) -> Response:
        report = await health.report()
        return JSONResponse(report, 200 if report["status"] == "ok" else 503)

    return Starlette(
        routes=[Route("/metrics", metrics), Route("/health", health_endpoint)],
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the process's main app has them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(64)
    return sock


@contextlib.asynccontextmanager
async def serving(host: str, port: int, app: Starlette) -> AsyncIterator[None]:
    """Serve `app` on host:port while the block runs; port 0: not served. A port that is
    taken fails the start (two instances given one port is a deployment error)."""
    if not port:
        yield
        return
    sock = _listening_socket(host, port)
    server = _EmbeddedServer(
        uvicorn.Config(app, lifespan="off", access_log=False, log_config=None, server_header=False)
    )
    task = asyncio.create_task(server.serve([sock]), name="metrics-server")
    log.info("metrics.serving", host=host, port=port)
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        sock.close()

"""Hostile inputs of issue #8 against the running pipeline: real Kafka, PostgreSQL, every
service as its own process.

Each input is published as a sender (or a broken support tool) would publish it, and must
end with its exact outcome: intake's status with the exact reason codes, a dead letter in
each consuming service's DLT, or an audited refusal. None may stall a service, fail into
PROCESSING_FAILED or vanish. Afterwards a fresh valid order still goes all the way to
PRODUCED: every service is still consuming.

The cases are data (`CASES`, 118 kinds); add more beside them. They cover intake's fetch
path (links, special files, TLS), every field of order.submitted a careless sender can get
wrong, bytes that are no order at all (deep nesting, huge integers, bad UTF-8, a content-type
header that must not pick the decoder, the 800 kB unterminated body), order.commands
(broken, unsigned, signed for an unknown order), garbage on every internal topic, and
unreadable headers or a foreign origin on every service's retry topic.
tests/unit/test_hostile_input.py fuzzes the event model and
tests/integration/test_intake_documents.py the documents' bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from devtools.factories import submitted
from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN
from shared.events import CancelOrder, OrderStatusChanged, Status, encode, parse_command
from shared.outbox import kafka_producer
from shared.reasons import ReasonCode
from shared.signing import CommandSigner
from shared.topics import (
    CARD_PRODUCED,
    COMMAND_OUTCOMES,
    ORDER_ACCEPTED,
    ORDER_APPROVED,
    ORDER_COMMANDS,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    SERVICES,
    dlt_topic,
    retry_topic,
)
from tests.e2e.conftest import Pipeline, as_bytes, collect, publish, run_id

R = ReasonCode
REJECTED = Status.DOCUMENTS_REJECTED
COMMAND_READERS = ("intake", "registry_check")  # the stages that read order.commands


@dataclass
class Context:
    """What a case may need: where uploads live, the document store, special files."""

    upload_dir: Path
    store: str  # the fake document store's base URL, http://host:port
    run: str
    special: list[Path] = field(default_factory=list)

    def _path(self, name: str) -> Path:
        path = self.upload_dir / f"hostile-{self.run}" / f"{len(self.special)}-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.special.append(path)
        return path

    def fifo(self) -> str:
        path = self._path("fifo.jpg")
        os.mkfifo(path)
        return path.as_uri()

    def symlink(self) -> str:
        path = self._path("link.jpg")
        sample = submitted("x")["documents"]["photo"]["url"].removeprefix("file://")
        path.symlink_to(sample)  # a valid photo inside the upload directory
        return path.as_uri()

    def release(self) -> None:
        """Open every FIFO for writing once: a reader blocked on it (a bug) is let go."""
        for path in self.special:
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


Value = str | Callable[[Context], str]
Build = Callable[[str, Context], bytes]


def order_with(**docs: dict[str, Value]) -> Build:
    """An otherwise valid submission whose documents have these fields changed."""

    def build(order_id: str, ctx: Context) -> bytes:
        order = submitted(order_id)
        for kind, fields in docs.items():
            for key, value in fields.items():
                order["documents"][kind][key] = value(ctx) if callable(value) else value
        return as_bytes(order)

    return build


def store(path: str, scheme: str = "http", port: str = "", userinfo: str = "") -> Value:
    def url(ctx: Context) -> str:
        host, _, real_port = ctx.store.removeprefix("http://").partition(":")
        return f"{scheme}://{userinfo}{host}:{port or real_port}{path}"

    return url


def upload(path: str) -> Value:
    return lambda ctx: f"file://{ctx.upload_dir}/{path}"


def command_json(**fields: Any) -> Build:
    def build(order_id: str, _ctx: Context) -> bytes:
        body = {
            "event_id": str(uuid.uuid4()),
            "occurred_at": "2026-06-03T08:15:00Z",
            "order_id": order_id,
            "actor": "s-1",
            **fields,
        }
        return json.dumps(body).encode()

    return build


def with_field(path: str, value: Any) -> Build:
    """An otherwise valid submission with one field (dotted path) set, or removed (DROP)."""

    def build(order_id: str, _ctx: Context) -> bytes:
        order = submitted(order_id)
        *parents, last = path.split(".")
        node = order
        for part in parents:
            node = node[part]
        if value is DROP:
            del node[last]
        else:
            node[last] = value
        return as_bytes(order)

    return build


def raw(data: bytes) -> Build:
    return lambda _order_id, _ctx: data


DROP = object()
UNREADABLE = (
    ("not-json", b"\xff{not json"),
    ("empty-body", b""),
    ("json-null", b"null"),
    ("json-array", b"[]"),
    ("json-string", b'"order"'),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000),
    ("huge-integer", b'{"revision": ' + b"9" * 5000 + b"}"),
    ("invalid-utf8", b'{"order_id": "\xc3\x28"}'),
    ("truncated-800kb", b'{"order_id": "H3-big", "pad": "' + b"x" * 800_000),
)


def cancel_unknown(order_id: str, _ctx: Context) -> bytes:
    return encode(CancelOrder(order_id=order_id, revision=1, reason="dup", actor="s-1"))


@dataclass(frozen=True)
class Case:
    """One hostile input and the outcome it must end with."""

    name: str
    topic: str
    value: Build
    codes: frozenset[ReasonCode] = frozenset()  # intake's DOCUMENTS_REJECTED reasons
    dead_letters: tuple[str, ...] = ()  # services whose DLT must hold it (by key)
    audit: tuple[str, str] | None = None  # (service, outcome) in its command_audit
    signed: bool = False  # a command sent as support sends it (with its signature)
    headers: tuple[tuple[str, bytes], ...] = ()  # Kafka headers the sender adds


def rejected(name: str, build: Build, *codes: ReasonCode, dlt: bool = False) -> Case:
    return Case(name, ORDER_SUBMITTED, build, frozenset(codes), ("intake",) if dlt else ())


def broken_command(name: str, build: Build) -> Case:
    return Case(name, ORDER_COMMANDS, build, dead_letters=COMMAND_READERS)


PM, IM, SI = R.PHOTO_MISSING, R.ID_COPY_MISSING, R.SCHEMA_INVALID
CASES = [
    # Links intake refuses with why on the first try (defect 8).
    rejected("port-99999", order_with(photo={"url": store("/docs/p.jpg", port="99999")}), PM),
    rejected("port-18390x", order_with(photo={"url": store("/docs/p.jpg", port="18390x")}), PM),
    rejected("nul-in-file-name", order_with(photo={"url": upload("a%00.jpg")}), PM),
    rejected("nul-as-folder", order_with(photo={"url": upload("%00/p.jpg")}), PM),
    rejected("name-too-long", order_with(photo={"url": upload("a" * 300 + ".jpg")}), PM),
    rejected("unicode-name", order_with(photo={"url": upload("\u00e6\u00f8-\U0001f600.jpg")}), PM),
    rejected("invalid-utf8-name", order_with(photo={"url": upload("%ff%fe.jpg")}), PM),
    rejected("upload-dir-itself", order_with(photo={"url": upload("")}), PM),
    rejected("dot-dot", order_with(photo={"url": upload("%2e%2e/%2e%2e/etc/passwd")}), PM),
    rejected("remote-file-host", order_with(photo={"url": "file://remote.example/etc/hosts"}), PM),
    rejected("relative-file", order_with(photo={"url": "file:relative/p.jpg"}), PM),
    rejected("ipv6-unclosed", order_with(photo={"url": "http://[::1/p.jpg"}), PM),
    rejected("ipv6-literal", order_with(photo={"url": "http://[::1]:1/p.jpg"}), PM),
    rejected("userinfo", order_with(photo={"url": store("/docs/p.jpg", userinfo="u:pw@")}), PM),
    rejected("idna-host", order_with(photo={"url": "http://xn--80ak6aa92e.example/p.jpg"}), PM),
    rejected("nfkc-host", order_with(photo={"url": "http://a\uff03b@127.0.0.1/p.jpg"}), PM),
    rejected("scheme-ftp", order_with(id_copy={"url": "ftp://127.0.0.1/id.pdf"}), IM),
    rejected("scheme-data", order_with(id_copy={"url": "data:application/pdf,%25PDF"}), IM),
    # TLS to a plain-HTTP store: permanent, not minutes of retries (defect 10b).
    rejected("https-to-http", order_with(id_copy={"url": store("/docs/x", scheme="https")}), IM),
    # Special files in the upload directory (defect 6).
    rejected("fifo", order_with(photo={"url": Context.fifo}), PM),
    rejected(
        "fifo-both", order_with(photo={"url": Context.fifo}, id_copy={"url": Context.fifo}), PM, IM
    ),
    rejected("symlink", order_with(photo={"url": Context.symlink}), PM),
    # Fields that could not even be stored (a NUL in jsonb), and oversize ones (defect 8).
    rejected("nul-content-type", order_with(photo={"content_type": "a\u0000"}), SI, dlt=True),
    rejected("crlf-content-type", order_with(id_copy={"content_type": "a\r\nb"}), SI, dlt=True),
    rejected("nul-in-url", order_with(photo={"url": "file:///p\u0000.jpg"}), SI, dlt=True),
    rejected("url-too-long", order_with(photo={"url": "http://x/" + "a" * 3000}), SI, dlt=True),
    # Commands: refused and audited, or dead-lettered, never applied (defects 9, 10e).
    Case(
        "cancel-unknown-order",
        ORDER_COMMANDS,
        cancel_unknown,
        audit=("intake", "refused: unknown order"),
        signed=True,
    ),
    # Anyone who can write to Kafka: a command without support's signature is refused.
    Case("cancel-unsigned", ORDER_COMMANDS, cancel_unknown, audit=("intake", "refused: unsigned")),
    broken_command("bad-actor", command_json(event_type="order.replay", actor="not staff")),
    broken_command("unknown-type", command_json(event_type="order.explode")),
    broken_command("override-no-reason", command_json(event_type="order.override_check")),
    broken_command("cancel-rev-0", command_json(event_type="order.cancel", revision=0, reason="x")),
    broken_command("nul-reason", command_json(event_type="order.replay", reason="a\u0000b")),
    broken_command("not-json", lambda _o, _c: b"\xff{not json"),
    broken_command("command-empty", raw(b"")),
    broken_command("command-array", raw(b"[]")),
    broken_command(
        "check-name-bad",
        command_json(event_type="order.override_check", revision=1, check="DROP TABLE", reason="x"),
    ),
    broken_command("cancel-no-revision", command_json(event_type="order.cancel", reason="x")),
    broken_command("replay-bad-stage", command_json(event_type="order.replay", stage="notify")),
    broken_command("actor-too-long", command_json(event_type="order.replay", actor="a" * 65)),
    broken_command(
        "cmd-occurred-at-naive",
        command_json(event_type="order.replay", occurred_at="2026-06-03T08:15:00"),
    ),
    broken_command("cmd-event-id-not-uuid", command_json(event_type="order.replay", event_id="x")),
    # Every field of order.submitted a careless sender can get wrong: its exact code at once.
    *(
        rejected(name, with_field(path, value), *codes, dlt=True)
        for name, path, value, codes in (
            ("org-check-digit", "employer.org_number", "974760674", [R.ORG_NUMBER_INVALID]),
            ("org-8-digits", "employer.org_number", "97476067", [R.ORG_NUMBER_INVALID]),
            ("org-letters", "employer.org_number", "97476067a", [R.ORG_NUMBER_INVALID]),
            ("org-as-number", "employer.org_number", 974760673, [SI]),
            ("employer-missing", "employer", DROP, [SI]),
            ("employer-not-object", "employer", "Bygg AS", [SI]),
            ("employer-name-empty", "employer.name", "", [SI]),
            ("employer-name-bell", "employer.name", "Bygg\u0007 AS", [SI]),
            ("email-bad", "employer.contact_email", "not-an-email", [SI]),
            ("nid-check-digit", "worker.national_id", "17059012346", [R.NATIONAL_ID_INVALID]),
            ("nid-10-digits", "worker.national_id", "1705901234", [R.NATIONAL_ID_INVALID]),
            ("nid-as-number", "worker.national_id", 17059012345, [SI]),
            ("no-identity", "worker.national_id", None, [R.WORKER_IDENTITY_MISSING]),
            ("given-name-too-long", "worker.given_name", "K" * 500, [SI]),
            ("family-name-nul", "worker.family_name", "Nord\u0000mann", [SI]),
            ("family-name-newline", "worker.family_name", "Nord\nmann", [SI]),
            ("birth-date-30-feb", "worker.birth_date", "1990-02-30", [SI]),
            ("birth-date-year-0", "worker.birth_date", "0000-01-01", [SI]),
            ("birth-date-number", "worker.birth_date", 19900517, [SI]),
            ("nationality-lower", "worker.nationality", "no", [SI]),
            ("worker-list", "worker", [], [SI]),
            ("card-type-unknown", "card_type", "mining", [SI]),
            ("card-type-missing", "card_type", DROP, [SI]),
            ("revision-0", "revision", 0, [SI]),
            ("revision-huge", "revision", 10**30, [SI]),
            ("revision-string", "revision", "1", [SI]),
            ("revision-bool", "revision", True, [SI]),
            ("occurred-at-overflow", "occurred_at", "9999-12-31T23:59:59-14:00", [SI]),
            ("occurred-at-naive", "occurred_at", "2026-06-03T08:15:00", [SI]),
            ("occurred-at-garbage", "occurred_at", "yesterday", [SI]),
            ("event-id-not-uuid", "event_id", "not-a-uuid", [SI]),
            ("event-id-missing", "event_id", DROP, [SI]),
            ("employment-type-unknown", "employment.type", "volunteer", [SI]),
            ("start-date-bad", "employment.start_date", "2026-13-01", [SI]),
            ("end-before-start", "employment.end_date", "2020-01-01", [SI]),
            ("agency-missing", "employment.type", "hired_from_agency", [SI]),
            ("sha256-upper", "documents.photo.sha256", "A" * 64, [SI]),
            ("sha256-short", "documents.id_copy.sha256", "ab", [SI]),
            ("photo-null", "documents.photo", None, [PM]),
            ("id-copy-missing", "documents.id_copy", DROP, [IM]),
            ("documents-missing", "documents", DROP, [PM, IM]),
            ("url-empty", "documents.photo.url", "", [SI]),
        )
    ),
    # Bytes that are no order at all: dead-lettered, and the order named by the key told.
    *(rejected(f"bytes-{name}", raw(data), SI, dlt=True) for name, data in UNREADABLE),
    # A content-type header must not choose a decoder (defect 2).
    Case(
        "json-header-garbage-body",
        ORDER_SUBMITTED,
        raw(b"<html>"),
        frozenset({SI}),
        ("intake",),
        headers=(("content-type", b"application/json"),),
    ),
    Case(
        "text-header-bad-utf8",
        ORDER_SUBMITTED,
        raw(b"\xfe\xff"),
        frozenset({SI}),
        ("intake",),
        headers=(("content-type", b"text/plain; charset=utf-8"),),
    ),
    # Garbage on every internal topic: each service that reads it dead-letters it.
    Case("garbage-accepted", ORDER_ACCEPTED, raw(b"{"), dead_letters=("registry_check", "verify")),
    Case("garbage-approved", ORDER_APPROVED, raw(b"{"), dead_letters=("production",)),
    Case("garbage-card", CARD_PRODUCED, raw(b"{"), dead_letters=("notify", "support", "verify")),
    Case(
        "garbage-status",
        ORDER_STATUS,
        raw(b"{"),
        dead_letters=("intake", "notify", "support", "verify"),
    ),
    Case("garbage-outcome", COMMAND_OUTCOMES, raw(b"{"), dead_letters=("support",)),
    # Every retry topic: unreadable retry headers, or an origin the service does not read.
    *(
        Case(
            f"retry-{service}-{what}",
            retry_topic(service),
            raw(b"{}"),
            dead_letters=(service,),
            headers=headers,
        )
        for service in SERVICES
        for what, headers in (
            ("bad-attempt", ((HEADER_ORIGIN, ORDER_STATUS.encode()), (HEADER_ATTEMPT, b"x"))),
            (
                "bad-due",
                (
                    (HEADER_ORIGIN, ORDER_STATUS.encode()),
                    (HEADER_ATTEMPT, b"1"),
                    (HEADER_DUE_AT, b"soon"),
                ),
            ),
            ("unknown-origin", ((HEADER_ORIGIN, b"hmskort.bogus.v1"), (HEADER_ATTEMPT, b"1"))),
        )
    ),
]


def intake_final(found: dict[str, list[Any]], order_id: str) -> OrderStatusChanged | None:
    for record in reversed(found[ORDER_STATUS]):
        if record.key.decode() == order_id:
            status = OrderStatusChanged.model_validate_json(record.value)
            if status.stage == "intake" and status.status is not Status.RECEIVED:
                return status
    return None


def dead_lettered(found: dict[str, list[Any]], service: str, order_id: str) -> list[str]:
    """The reasons of `service`'s dead letters for the message keyed `order_id`."""
    reasons: list[str] = []
    for record in found[dlt_topic(service)]:
        letter = json.loads(record.value)
        if letter.get("origin", {}).get("key") == order_id or letter.get("order_id") == order_id:
            reasons += letter.get("reasons", [])
    return reasons


async def audited(pipeline: Pipeline, service: str, order_id: str) -> list[str]:
    conn = await asyncpg.connect(pipeline.settings.database_url)
    try:
        rows = await conn.fetch(
            f"SELECT outcome FROM {service}.command_audit WHERE order_id = $1",  # noqa: S608 - our own schema names
            order_id,
        )
    finally:
        await conn.close()
    return [r["outcome"] for r in rows]


async def test_every_hostile_input_ends_with_its_exact_outcome_and_the_pipeline_goes_on(
    pipeline: Pipeline,
) -> None:
    run = run_id()
    ctx = Context(Path(pipeline.settings.upload_dir), pipeline.profile.docstore_url, run)
    ids = {case.name: f"H-{run}-{case.name}" for case in CASES}
    producer = kafka_producer(pipeline.settings.kafka_bootstrap_servers)
    await producer.start()
    started = time.monotonic()
    try:
        signer = CommandSigner.from_settings(pipeline.settings)
        for case in CASES:
            value = case.value(ids[case.name], ctx)
            headers = list(case.headers)
            if case.signed:
                signed = signer.sign(parse_command(value))
                value, headers = signed.value, list(signed.headers)
            await producer.send(case.topic, value, key=ids[case.name].encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()

    expect_status = {ids[c.name] for c in CASES if c.codes}
    expect_dlt = {(s, ids[c.name]) for c in CASES for s in c.dead_letters}
    topics = [ORDER_STATUS, *(dlt_topic(s) for s in SERVICES)]

    def done(found: dict[str, list[Any]]) -> bool:
        return all(intake_final(found, o) for o in expect_status) and all(
            dead_lettered(found, s, o) for s, o in expect_dlt
        )

    try:
        found = await collect(pipeline.settings, topics, set(ids.values()), done, timeout_s=90)
    finally:
        ctx.release()
    elapsed = time.monotonic() - started

    problems: list[tuple[str, str, object]] = []
    for case in CASES:
        order_id = ids[case.name]
        if case.codes:
            final = intake_final(found, order_id)
            got = (final.status, frozenset(r.code for r in final.reasons)) if final else None
            if got != (REJECTED, case.codes):
                problems.append((case.name, "status", got))
        for service in case.dead_letters:
            reasons = dead_lettered(found, service, order_id)
            if not reasons or "PROCESSING_FAILED" in reasons:
                problems.append((case.name, f"{service} dead letter", reasons))
        if case.audit is not None:
            service, outcome = case.audit
            if await audited(pipeline, service, order_id) != [outcome]:
                problems.append((case.name, "audit", await audited(pipeline, service, order_id)))
    assert problems == [], problems
    # First try, no retries: the whole suite is answered well inside one back-off.
    assert elapsed < 60, elapsed

    # Every service is still consuming: a fresh valid order goes all the way.
    fresh = submitted(f"H-{run}-fresh")
    await publish(pipeline.settings, [(fresh["order_id"], as_bytes(fresh))])

    def produced(found: dict[str, list[Any]]) -> bool:
        return any(
            OrderStatusChanged.model_validate_json(r.value).status is Status.PRODUCED
            for r in found[ORDER_STATUS]
        )

    after = await collect(
        pipeline.settings, [ORDER_STATUS], {fresh["order_id"]}, produced, timeout_s=90
    )
    assert produced(after), [r.value for r in after[ORDER_STATUS]]

"""intake's document checks against the real PostgreSQL and our fake document store over HTTP.

Every case of the hostile corpus (tests/corpus.py) gives its exact reason code; fetch
faults are either a permanent reason or a non-blocking retry; the accepted photo is
stored re-encoded without metadata; the ID copy is deleted once the order is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from PIL import Image

from devtools.factories import submitted
from devtools.fakes.docstore import DocStore
from services.intake.stage import build
from shared.db import create_pool, migrate
from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN, Delivery
from shared.events import OrderStatusChanged, Status, encode
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.topics import ORDER_ACCEPTED, ORDER_STATUS, ORDER_SUBMITTED, retry_topic
from tests import corpus
from tests.settings import AllSettings

R = ReasonCode


class Harness:
    def __init__(
        self, processor: Processor, pool: asyncpg.Pool, store: DocStore, blobs: Path
    ) -> None:
        self.processor, self.pool, self.store, self.blobs = processor, pool, store, blobs
        self.offset = 0

    def order(
        self,
        photo: tuple[str, bytes] | None = None,
        id_copy: tuple[str, bytes] | None = None,
        overrides: dict[str, dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """An order whose documents are served by the fake store (valid unless given)."""
        order_id = f"D-{uuid.uuid4().hex[:10]}"
        photo = photo or ("photo.jpg", corpus.valid_jpeg())
        id_copy = id_copy or ("id.pdf", corpus.valid_pdf())
        docs = {}
        for kind, (name, data) in (("photo", photo), ("id_copy", id_copy)):
            unique = f"{order_id}-{name}"
            docs[kind] = {"url": self.store.put(unique, data), "sha256": corpus.sha256(data)}
            docs[kind].update((overrides or {}).get(kind, {}))
        return submitted(order_id, documents=docs)

    async def send(self, order: dict[str, Any], attempt: int = 0) -> None:
        self.offset += 1
        headers = {}
        topic = ORDER_SUBMITTED
        if attempt:
            topic = retry_topic(self.processor.stage.name)
            headers = {
                HEADER_ORIGIN: ORDER_SUBMITTED.encode(),
                HEADER_ATTEMPT: str(attempt).encode(),
                HEADER_DUE_AT: b"0",
            }
        await self.processor.process(
            Delivery(
                topic,
                0,
                self.offset,
                order["order_id"].encode(),
                json.dumps(order).encode(),
                headers,
            )
        )

    async def outbox(self, order_id: str) -> list[tuple[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT topic, value FROM outbox WHERE key = $1 ORDER BY id", order_id.encode()
        )
        out: list[tuple[str, Any]] = []
        for r in rows:
            if r["topic"] == ORDER_STATUS:
                s = OrderStatusChanged.model_validate_json(r["value"])
                out.append((s.status, {(x.code, x.retryable) for x in s.reasons}))
            else:
                out.append((r["topic"], json.loads(r["value"]).get("photo_key")))
        return out


@pytest.fixture
async def harness(settings: AllSettings, tmp_path: Path) -> AsyncIterator[Harness]:
    async with DocStore(tmp_path / "store") as store:
        host = urlsplit(store.base_url).netloc
        s = settings.model_copy(
            update={
                "document_hosts": host,
                "fetch_read_timeout_s": 0.5,
                "fetch_connect_timeout_s": 0.5,
                "blob_dir": str(tmp_path / "blobs"),
            }
        )
        stage = build(s)
        stage.name = f"it_docs_{uuid.uuid4().hex[:8]}"
        await migrate(s.database_url, stage.name, stage.migrations)
        pool = await create_pool(s.database_url, stage.name, 5)
        try:
            yield Harness(Processor(pool, stage, s), pool, store, tmp_path / "blobs")
        finally:
            await pool.execute(f"DROP SCHEMA {stage.name} CASCADE")
            await pool.close()


ACCEPTED = [(Status.RECEIVED, set()), (ORDER_ACCEPTED, "photo"), (Status.ACCEPTED, set())]


@pytest.mark.parametrize(
    ("photo", "id_copy", "expected"),
    [
        (("p.jpg", "valid_jpeg"), None, None),
        (("p.png", "valid_png"), None, None),
        (("p.jpg", "png_named_jpg"), None, None),  # the bytes decide, not the name
        (None, ("id.jpg", "valid_jpeg"), None),  # an ID copy may be a photo of the card
        (("p.jpg", "truncated_jpeg"), None, {R.PHOTO_UNREADABLE}),
        (("p.png", "decompression_bomb"), None, {R.PHOTO_TOO_LARGE}),
        (("p.jpg", "tiny_photo"), None, {R.PHOTO_TOO_SMALL, R.PHOTO_PROPORTIONS}),
        (("p.jpg", "landscape_photo"), None, {R.PHOTO_PROPORTIONS}),
        (("p.jpg", "twelve_mb"), None, {R.PHOTO_TOO_LARGE}),
        (("p.jpg", "zero_bytes"), None, {R.PHOTO_EMPTY}),
        (("p.jpg", "html_page"), None, {R.PHOTO_FORMAT}),
        (("p.jpg", "valid_pdf"), None, {R.PHOTO_FORMAT}),  # a PDF is no photo
        (None, ("id.pdf", "encrypted_pdf"), {R.ID_COPY_ENCRYPTED}),
        (None, ("id.pdf", "garbage_pdf"), {R.ID_COPY_UNREADABLE}),
        (None, ("id.pdf", "five_page_pdf"), {R.ID_COPY_PAGES}),
        (None, ("id.pdf", "zero_bytes"), {R.ID_COPY_EMPTY}),
        (None, ("id.pdf", "html_page"), {R.ID_COPY_FORMAT}),
        # Every problem of an order at once, not one per attempt.
        (
            ("p.jpg", "tiny_photo"),
            ("id.pdf", "encrypted_pdf"),
            {R.PHOTO_TOO_SMALL, R.PHOTO_PROPORTIONS, R.ID_COPY_ENCRYPTED},
        ),
    ],
)
async def test_each_document_in_the_hostile_corpus_gets_its_exact_outcome(
    harness: Harness,
    photo: tuple[str, str] | None,
    id_copy: tuple[str, str] | None,
    expected: set[ReasonCode] | None,
) -> None:
    order = harness.order(
        photo=(photo[0], corpus.CASES[photo[1]]()) if photo else None,
        id_copy=(id_copy[0], corpus.CASES[id_copy[1]]()) if id_copy else None,
    )
    await harness.send(order)
    out = await harness.outbox(order["order_id"])
    if expected is None:
        assert [o[0] for o in out] == [Status.RECEIVED, ORDER_ACCEPTED, Status.ACCEPTED]
    else:
        assert out == [
            (Status.RECEIVED, set()),
            (Status.DOCUMENTS_REJECTED, {(code, False) for code in expected}),
        ]


async def test_a_wrong_checksum_is_its_own_reason(harness: Harness) -> None:
    order = harness.order(overrides={"photo": {"sha256": "0" * 64}})
    await harness.send(order)
    assert (await harness.outbox(order["order_id"]))[-1] == (
        Status.DOCUMENTS_REJECTED,
        {(R.PHOTO_CHECKSUM_MISMATCH, False)},
    )


async def test_the_stored_photo_is_re_encoded_without_metadata(harness: Harness) -> None:
    original = corpus.valid_jpeg()
    assert Image.open(io.BytesIO(original)).getexif()  # the upload carries EXIF with GPS
    order = harness.order(photo=("p.jpg", original))
    await harness.send(order)
    photo_key = (await harness.outbox(order["order_id"]))[1][1]
    assert photo_key.startswith(f"photos/{order['order_id']}/1-{order['event_id']}-")
    stored = Image.open(io.BytesIO((harness.blobs / photo_key).read_bytes()))
    assert stored.format == "JPEG"
    assert not stored.getexif()
    assert not {"exif", "icc_profile", "comment"} & set(stored.info)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://evil.example/photo.jpg", R.PHOTO_MISSING),  # not our document store
        ("ftp://127.0.0.1/photo.jpg", R.PHOTO_MISSING),
        ("file:///etc/passwd", R.PHOTO_MISSING),  # outside the upload directory
        ("file:///../../etc/passwd", R.PHOTO_MISSING),
        ("not a url at all", R.PHOTO_MISSING),
    ],
)
async def test_a_link_we_must_not_follow_is_refused_without_fetching(
    harness: Harness, url: str, expected: ReasonCode
) -> None:
    order = harness.order(overrides={"photo": {"url": url}})
    await harness.send(order)
    assert (await harness.outbox(order["order_id"]))[-1] == (
        Status.DOCUMENTS_REJECTED,
        {(expected, False)},
    )


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("404", R.PHOTO_MISSING), ("html200", R.PHOTO_CHECKSUM_MISMATCH)],
)
async def test_a_permanent_fetch_problem_names_its_cause(
    harness: Harness, fault: str, expected: ReasonCode
) -> None:
    order = harness.order()
    name = order["documents"]["photo"]["url"].rsplit("/", 1)[1]
    harness.store.add_fault(name, fault)  # type: ignore[arg-type]
    await harness.send(order)
    assert (await harness.outbox(order["order_id"]))[-1] == (
        Status.DOCUMENTS_REJECTED,
        {(expected, False)},
    )


@pytest.mark.parametrize("fault", ["500", "503", "timeout", "truncate", "reset"])
async def test_a_transient_fetch_failure_retries_without_rejecting(
    harness: Harness, fault: str
) -> None:
    """The order stays RECEIVED with a retryable reason, goes to the retry topic, and
    passes once the store has recovered."""
    order = harness.order()
    name = order["documents"]["photo"]["url"].rsplit("/", 1)[1]
    harness.store.add_fault(name, fault, times=1, s=5)  # type: ignore[arg-type]
    await harness.send(order)
    out = await harness.outbox(order["order_id"])
    assert out == [
        (retry_topic(harness.processor.stage.name), None),
        (Status.RECEIVED, {(R.DOCUMENT_FETCH_FAILED, True)}),
    ]

    await harness.send(order, attempt=1)  # what the retry topic brings back
    out = await harness.outbox(order["order_id"])
    assert [o[0] for o in out[2:]] == [ORDER_ACCEPTED, Status.ACCEPTED]  # no second RECEIVED


async def test_retries_used_up_need_attention(harness: Harness) -> None:
    order = harness.order()
    name = order["documents"]["photo"]["url"].rsplit("/", 1)[1]
    harness.store.add_fault(name, "500", times=100)
    max_attempts = harness.processor.settings.retry_max_attempts
    for attempt in range(max_attempts + 1):
        await harness.send(order, attempt=attempt)
    out = await harness.outbox(order["order_id"])
    assert out[-1] == (Status.NEEDS_ATTENTION, {(R.DOCUMENT_FETCH_FAILED, False)})
    assert [o[0] for o in out].count(Status.RECEIVED) == 1


async def test_the_id_copy_is_deleted_when_the_order_is_closed(harness: Harness) -> None:
    order = harness.order()
    await harness.send(order)
    rows = await harness.pool.fetch("SELECT kind, blob_key FROM documents")
    keys: dict[str, str] = {r["kind"]: r["blob_key"] for r in rows}
    id_key = keys["id_copy"]
    assert (harness.blobs / id_key).exists()
    for status in (Status.APPROVED, Status.PRODUCED):
        harness.offset += 1
        event = OrderStatusChanged(
            order_id=order["order_id"], revision=1, status=status, stage="production"
        )
        await harness.processor.process(
            Delivery(ORDER_STATUS, 0, harness.offset, None, encode(event))
        )
        # Not yet closed at APPROVED (a person may still need it); gone at PRODUCED.
        assert (harness.blobs / id_key).exists() is (status is Status.APPROVED)
    assert (harness.blobs / keys["photo"]).exists()  # the card needs it


async def test_a_late_older_revision_leaves_no_documents_behind(harness: Harness) -> None:
    newer = harness.order()
    newer["revision"] = 2
    await harness.send(newer)
    older = {**newer, "revision": 1, "event_id": str(uuid.uuid4())}
    await harness.send(older)
    order_dir = harness.blobs / "id-copies" / newer["order_id"]
    assert [p.name.split("-", 1)[0] for p in order_dir.iterdir()] == ["2"]


# The probe's own peak (VmHWM, this address space since exec): getrusage's ru_maxrss would
# also count the parent's memory at the fork, so a large test process would fail it.
MEMORY_PROBE = """
from pathlib import Path
from services.intake.documents import inspect
from tests import corpus
for name, make in corpus.CASES.items():
    data = make()
    for kind in ("photo", "id_copy"):
        inspect(kind, data, corpus.sha256(data))
status = Path("/proc/self/status").read_text().splitlines()
print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024)
"""


def test_no_document_makes_intake_use_unbounded_memory() -> None:
    """The whole corpus (a 30000 x 30000 bomb, 12 MB, broken PDFs) inspected in one process
    stays well under the bound: the bomb is refused from its header, never decoded."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", MEMORY_PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    peak_mb = int(result.stdout.strip().splitlines()[-1])
    assert peak_mb < 400, f"peak RSS inspecting the corpus: {peak_mb} MB"


# ---------------------------------------------------------------- hostile links and files


async def last_status(harness: Harness, order_id: str) -> OrderStatusChanged:
    rows = await harness.pool.fetch(
        "SELECT value FROM outbox WHERE key = $1 AND topic = $2 ORDER BY id",
        order_id.encode(),
        ORDER_STATUS,
    )
    return OrderStatusChanged.model_validate_json(rows[-1]["value"])


async def test_a_second_event_for_the_same_revision_never_changes_the_stored_documents(
    harness: Harness,
) -> None:
    """Defect 3: the second event (new event id, another valid photo) is ignored, and
    neither overwrites the first's photo nor leaves its own documents behind."""
    first = harness.order()
    order_id = first["order_id"]
    await harness.send(first)
    photo_key = (await harness.outbox(order_id))[1][1]
    accepted_photo = (harness.blobs / photo_key).read_bytes()

    other = corpus.valid_png()
    second = json.loads(json.dumps(first))
    second["event_id"] = str(uuid.uuid4())
    second["documents"]["photo"] = {
        "url": harness.store.put(f"{order_id}-other.png", other),
        "sha256": corpus.sha256(other),
    }
    await harness.send(second)

    assert (await harness.outbox(order_id))[3:] == []  # ignored: nothing more emitted
    assert (harness.blobs / photo_key).read_bytes() == accepted_photo
    # What the blob store holds is exactly what the order refers to: the second event's
    # photo and ID copy are gone.
    assert {p.relative_to(harness.blobs).as_posix() for p in harness.blobs.rglob("*.*")} == {
        r["blob_key"] for r in await harness.pool.fetch("SELECT blob_key FROM documents")
    }


def fifo(upload_dir: Path, name: str) -> Path:
    folder = upload_dir / f"special-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    path = folder / name
    os.mkfifo(path)
    return path


async def test_fifos_and_links_in_the_upload_directory_are_refused_at_once(
    harness: Harness, settings: AllSettings
) -> None:
    """Defect 6: a FIFO blocks whoever opens it; six of them stopped intake. Each is now
    refused from its file type, quickly, with a message that says why."""
    upload_dir = Path(settings.upload_dir)
    fifos = [fifo(upload_dir, f"f{i}.jpg") for i in range(6)]
    link = fifos[0].parent / "link.jpg"
    link.symlink_to(Path(submitted("x")["documents"]["photo"]["url"].removeprefix("file://")))
    try:
        started = time.monotonic()
        orders = []
        for photo, id_copy in [(fifos[0], fifos[1]), (fifos[2], link), (fifos[3], fifos[4])]:
            order = harness.order(
                overrides={
                    "photo": {"url": photo.as_uri()},
                    "id_copy": {"url": id_copy.as_uri()},
                }
            )
            orders.append(order)
            await asyncio.wait_for(harness.send(order), 10)
        assert time.monotonic() - started < 5
        for order in orders:
            status = await last_status(harness, order["order_id"])
            assert status.status is Status.DOCUMENTS_REJECTED
            assert {r.code for r in status.reasons} == {R.PHOTO_MISSING, R.ID_COPY_MISSING}
        mixed = await last_status(harness, orders[1]["order_id"])
        messages = [r.message_en for r in mixed.reasons]
        assert any("FIFO" in m for m in messages), messages
        assert any("symbolic link" in m for m in messages), messages
    finally:
        for path in fifos:  # release a reader the old code left blocked in open()
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://{host}:99999/docs/p.jpg", "port"),
        ("http://{host}:18390x/docs/p.jpg", "port"),
        ("http://[::1/docs/p.jpg", "not a valid URL"),
        ("http://[::1]:1/docs/p.jpg", "not our document store"),
        ("http://user:secret@{hostport}/docs/p.jpg", "credentials"),
        ("http://{hostport}@evil.example/docs/p.jpg", "not our document store"),
        ("http://xn--a.example/p.jpg", "not our document store"),
        ("http://a\uff03b@{hostport}/docs/p.jpg", "not a valid URL"),
        ("http://{hostport}/docs/p p.jpg", "404"),
        ("file://{upload}/%00/p.jpg", "NUL"),
        ("file://{upload}/a%00.jpg", "NUL"),
        ("file://{upload}/" + "a" * 300 + ".jpg", "too long"),
        ("file://{upload}/" + "a/" * 900 + "p.jpg", "not found"),
        ("file://{upload}/bilde-\u00e6\u00f8\u00e5-\U0001f600.jpg", "not found"),
        ("file://{upload}/%ff%fe.jpg", "not found"),
        ("file://{upload}/", "not a regular file"),
        ("file://{upload}/%2e%2e/%2e%2e/etc/passwd", "upload directory"),
        ("file://remote.example{upload}/p.jpg", "upload directory"),
        ("file:relative/p.jpg", "upload directory"),
    ],
)
async def test_a_malformed_link_is_refused_on_the_first_try_with_why(
    harness: Harness, settings: AllSettings, url: str, why: str
) -> None:
    """Defect 8: links that used to raise (port 99999, a NUL in the path, ...) fail six
    times and end as PROCESSING_FAILED; each is now PHOTO_MISSING with a reason, at once."""
    hostport = urlsplit(harness.store.base_url).netloc
    link = url.format(
        host=hostport.split(":")[0], hostport=hostport, upload=Path(settings.upload_dir)
    )
    order = harness.order(overrides={"photo": {"url": link}})
    await harness.send(order)
    status = await last_status(harness, order["order_id"])
    assert status.status is Status.DOCUMENTS_REJECTED, status
    (reason,) = status.reasons
    assert reason.code in (R.PHOTO_MISSING, R.PHOTO_CHECKSUM_MISMATCH), reason
    assert why in reason.message_en


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("content_type", "image/jpeg\u0000"),
        ("content_type", "image/jpeg\r\nX-Injected: 1"),
        ("url", "file:///photo\u0000.jpg"),
    ],
)
async def test_control_characters_in_a_document_field_are_schema_invalid_with_the_field(
    harness: Harness, field: str, value: str
) -> None:
    """Defect 8: a NUL in content_type could not be stored (jsonb), failed six times."""
    order = harness.order(overrides={"photo": {field: value}})
    await harness.send(order)
    status = await last_status(harness, order["order_id"])
    assert status.status is Status.DOCUMENTS_REJECTED
    assert [(r.code, r.check) for r in status.reasons] == [
        (R.SCHEMA_INVALID, f"documents.photo.{field}")
    ]


async def test_https_to_a_plain_http_store_is_a_permanent_refusal(harness: Harness) -> None:
    """Defect 10b: a TLS handshake that fails is not retried for minutes: *_MISSING."""
    order = harness.order()
    order["documents"]["id_copy"]["url"] = order["documents"]["id_copy"]["url"].replace(
        "http://", "https://"
    )
    await harness.send(order)
    status = await last_status(harness, order["order_id"])
    assert status.status is Status.DOCUMENTS_REJECTED
    assert [r.code for r in status.reasons] == [R.ID_COPY_MISSING]
    assert "TLS" in status.reasons[0].message_en

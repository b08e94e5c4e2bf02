"""CPU time of the costly pieces of per-order work, one by one (issue 11, item 4).

    python -m tests.bench_parts [--repeat 30]

Prints the median CPU milliseconds (this process's CPU time, so a busy machine changes
the figures less than wall time) of: the card's print file, the signed proof of order,
the RECEIVED e-mail (composition only, the proof already made) and the PRODUCED e-mail,
intake's inspection of a small (450 x 580) and a 12-megapixel (3024 x 4032) photo, and
one message from FastStream's subscriber to a service's dispatcher (in memory).
The last line is the same figures as JSON.
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose: that is its whole output.

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageDraw, ImageFilter

from devtools.factories import sample_photo, sha256
from services.intake.documents import Inspected, inspect
from services.notify.mail import compose
from services.notify.proof import ProofContent, make_proof
from services.notify.templates import Card, Notice, render
from services.production.domain import CardFace
from services.production.printfile import render_card
from shared.events import Status
from shared.qrtoken import Payload, token_url

VERIFY = "https://verify.kortflyt.example"


def phone_photo(width: int = 3024, height: int = 4032) -> bytes:
    """A portrait JPEG the size of a 12-megapixel phone photo, with texture (a flat image
    decodes faster than a real one)."""
    noise = Image.effect_noise((width // 4, height // 4), 40).resize((width, height))
    image = Image.merge(
        "RGB",
        (noise, noise.rotate(90, expand=False), noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    )
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 6, 3 * width // 4, height // 2), fill=(224, 188, 160))
    image = image.filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


def card_face(key: Ed25519PrivateKey) -> CardFace:
    payload = Payload(
        kind="card", id="0000012344", name="Kari Nordmann", org_number="974760673",
        day=date(2028, 6, 3),
    )  # fmt: skip
    return CardFace(
        card_number="0000012344",
        card_type="construction",
        holder_name="Kari Nordmann",
        birth_date=date(1990, 5, 17),
        employer_name="BYGG OG BETONG AS",
        employer_org_number="974760673",
        issued_on=date(2026, 6, 3),
        valid_until=date(2028, 6, 3),
        issuer="HMS-kort (kortflyt)",
        qr_url=token_url(VERIFY, payload, key),
    )


def proof_content() -> ProofContent:
    return ProofContent(
        order_id="A-2026-000123",
        revision=1,
        status=Status.RECEIVED,
        ordered_on=date(2026, 6, 3),
        worker_name="Kari Nordmann",
        worker_birth_date=date(1990, 5, 17),
        employer_name="Bygg og Betong AS",
        employer_org_number="974760673",
        card_type="construction",
        issued_at=datetime(2026, 6, 3, 8, 15, tzinfo=UTC),
    )


def mail(status: Status, proof: bytes | None) -> Callable[[], bytes]:
    card = Card("0000012344", date(2026, 6, 3), date(2028, 6, 3))
    notice = Notice(
        order_id="A-2026-000123",
        revision=1,
        status=status,
        employer_name="Bygg og Betong AS",
        worker_name="Kari Nordmann",
        card_type="construction",
        card=card if status is Status.PRODUCED else None,
    )

    def run() -> bytes:
        return compose(
            sender="HMS-kort <noreply@kortflyt.example>",
            recipient="hms@example.no",
            text=render(notice),
            msg_id=f"<hmskort.A-2026-000123.r1.{status.value.lower()}@kortflyt.example>",
            order_id="A-2026-000123",
            revision=1,
            status=status,
            sent_at=datetime(2026, 6, 3, 8, 15, tzinfo=UTC),
            proof=proof,
        )

    return run


def cpu_ms(work: Callable[[], Any], repeat: int) -> float:
    """Median CPU milliseconds of `work` (after one untimed call)."""
    work()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def checked(kind: str, data: bytes) -> Callable[[], Inspected]:
    digest = sha256(data)

    def run() -> Inspected:
        result = inspect("photo", data, digest)
        if not isinstance(result, Inspected):
            raise SystemExit(f"the {kind} photo is rejected: {result}")
        return result

    return run


async def _through_subscriber(messages: int) -> float:
    """CPU ms per message from FastStream's subscriber to the service's dispatcher (the
    wiring of shared.runtime.Service, in memory: TestKafkaBroker, a processor that only
    counts), so the cost of what FastStream does per message shows."""
    from faststream.kafka import TestKafkaBroker

    from shared.delivery import Delivery
    from shared.processor import Processor
    from shared.runtime import Service
    from shared.settings import Settings
    from tests.unit.test_wiring import INPUT_TOPIC, WiringStage

    class Counting(Processor):
        handled = 0

        async def process_guarded(self, d: Delivery) -> None:
            self.handled += 1

    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", shutdown_grace_s=1.0)
    service = Service(lambda _settings: WiringStage(), settings)
    counting = Counting(None, service.stage, settings)  # type: ignore[arg-type]
    service.processor = counting
    async with TestKafkaBroker(service.broker) as broker:
        for n in range(50):  # warm up
            await broker.publish(b"m", INPUT_TOPIC, key=f"W-{n}".encode())
        await service.main.dispatcher.drain(5.0)
        start = time.process_time()
        for n in range(messages):
            await broker.publish(b"m", INPUT_TOPIC, key=f"A-{n % 64}".encode())
        await service.main.dispatcher.drain(30.0)
        used = time.process_time() - start
    assert counting.handled == messages + 50
    return used / messages * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed calls of each, default 30")
    args = parser.parse_args(argv)
    key = Ed25519PrivateKey.generate()
    face, small, large = card_face(key), sample_photo(), phone_photo()
    stored = checked("small", small)().stored
    proof = make_proof(proof_content(), key, VERIFY)
    parts: dict[str, Callable[[], Any]] = {
        "print_file": lambda: render_card(face, stored),
        "proof": lambda: make_proof(proof_content(), key, VERIFY),
        "mail_received": mail(Status.RECEIVED, proof),
        "mail_produced": mail(Status.PRODUCED, None),
        "inspect_photo_450x580": checked("small", small),
        "inspect_photo_12mp": checked("12-megapixel", large),
    }
    figures = {}
    for name, work in parts.items():
        repeat = max(3, args.repeat // 5) if name == "inspect_photo_12mp" else args.repeat
        figures[name] = round(cpu_ms(work, repeat), 2)
        print(f"{name:24} {figures[name]:8.2f} CPU ms (median of {repeat})", flush=True)
    per_message = asyncio.run(_through_subscriber(2000))
    figures["subscriber_message"] = round(per_message, 3)
    print(f"{'subscriber_message':24} {per_message:8.3f} CPU ms (mean of 2000)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Publish a handful of sample orders (valid and invalid) and print each one's final status.

    python deploy/demo.py [--timeout 120]

Run by `make run` once the services are up. It reads `hmskort.order.status.v1` from the
beginning and waits until every sample order has reached a final status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from rich import box
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.dev import PROFILES
from devtools.factories import sha256, submitted
from devtools.fakes.register_data import CLEANING_COMPANY
from services.intake.settings import IntakeSettings
from shared.events import FINAL_STATUSES, OrderStatusChanged
from shared.outbox import kafka_producer
from shared.settings import Settings
from shared.topics import ORDER_STATUS, ORDER_SUBMITTED, dlt_topic

# The settings of the system `make run` started (deploy.dev's dev profile).
for _key, _value in PROFILES[os.environ.get("KORTFLYT_PROFILE", "dev")].env().items():
    os.environ.setdefault(_key, _value)


def landscape_photo(upload_dir: Path) -> dict[str, str]:
    """A photo a careless employer might upload: landscape, and too small."""
    from PIL import Image

    path = upload_dir / "samples" / "landscape.jpg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (400, 300), (120, 160, 90)).save(path, format="JPEG")
    return {
        "url": path.resolve().as_uri(),
        "sha256": sha256(path.read_bytes()),
        "content_type": "image/jpeg",
    }


def sample_orders(run: str) -> list[tuple[str, bytes]]:
    """(what it shows, the raw message) for each sample order of this run."""
    good = submitted(f"DEMO-{run}-1")
    cleaning = submitted(f"DEMO-{run}-2", card_type="cleaning")
    # An approved cleaning company of the fake registers' default seed.
    cleaning["employer"] = {**cleaning["employer"], "org_number": CLEANING_COMPANY}
    bad_org = submitted(f"DEMO-{run}-3")
    bad_org["employer"] = {**bad_org["employer"], "org_number": "974760674"}
    bad_id = submitted(f"DEMO-{run}-4")
    bad_id["worker"] = {**bad_id["worker"], "national_id": "17059012345"}
    no_docs = submitted(f"DEMO-{run}-5")
    del no_docs["documents"]
    wrong_type = submitted(f"DEMO-{run}-6")
    wrong_type["revision"] = "one"
    bad_photo = submitted(f"DEMO-{run}-8")
    bad_photo["documents"] = {
        **bad_photo["documents"],
        "photo": landscape_photo(Path(IntakeSettings().upload_dir)),
    }
    foreign_link = submitted(f"DEMO-{run}-9")
    foreign_link["documents"] = {
        **foreign_link["documents"],
        "id_copy": {
            **foreign_link["documents"]["id_copy"],
            "url": "https://files.example.com/id.pdf",
        },
    }
    return [
        ("valid construction card", json.dumps(good).encode()),
        ("valid cleaning card", json.dumps(cleaning).encode()),
        ("organisation number with a wrong check digit", json.dumps(bad_org).encode()),
        ("national id with wrong control digits", json.dumps(bad_id).encode()),
        ("documents missing", json.dumps(no_docs).encode()),
        ("revision is not a number", json.dumps(wrong_type).encode()),
        ("not JSON (dead-lettered, order told)", f'{{"order_id": "DEMO-{run}-7", oops'.encode()),
        ("photo in landscape and too small", json.dumps(bad_photo).encode()),
        ("ID copy linked from a foreign server", json.dumps(foreign_link).encode()),
    ]


async def publish(settings: Settings, messages: Iterable[tuple[str, bytes]]) -> None:
    producer = kafka_producer(**settings.kafka_client())
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(ORDER_SUBMITTED, value, key=key.encode())
    finally:
        await producer.stop()


async def follow_statuses(
    settings: Settings, order_ids: set[str], timeout_s: float
) -> tuple[dict[str, OrderStatusChanged], set[str]]:
    """The latest status of each order and the orders dead-lettered by intake.

    Returns once every order is final or dead-lettered, or at the timeout.
    """
    # No group: every partition, from the beginning, nothing committed.
    consumer = AIOKafkaConsumer(
        ORDER_STATUS,
        dlt_topic("intake"),
        **settings.kafka_client(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    latest: dict[str, OrderStatusChanged] = {}
    dead: set[str] = set()
    seen: set[uuid.UUID] = set()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if key not in order_ids:
                        continue
                    if record.topic == ORDER_STATUS:
                        status = OrderStatusChanged.model_validate_json(record.value or b"")
                        # A re-published copy (after a crash) is not a newer status.
                        if status.event_id not in seen:
                            seen.add(status.event_id)
                            latest[key] = status
                    else:
                        dead.add(key)
            final = {k for k, s in latest.items() if s.status in FINAL_STATUSES}
            if order_ids <= final | dead:
                break
    finally:
        await consumer.stop()
    return latest, dead


# Order ids and reasons' "[check]" are data, never markup; a pipe gets whole lines.
console = Console(markup=False, emoji=False, highlight=False)
if not console.is_terminal:
    console.width = 10_000


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    t = Table(box=box.SIMPLE_HEAD if console.is_terminal else None, pad_edge=False)
    for name in header:
        t.add_column(name)
    for row in rows:
        t.add_row(*row)
    return t


async def show_cards_and_mail(profile: Any, latest: dict[str, OrderStatusChanged]) -> None:
    """Where this run's print files and e-mails are, for a newcomer to open."""
    from email import message_from_bytes
    from email.policy import default

    from services.notify.templates import MAILED

    expected = {(o, s.status.value) for o, s in latest.items() if s.status in MAILED}
    mails: dict[tuple[str, str], tuple[Path, Any]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # notify's sender may be a moment behind the statuses
        for path in sorted(profile.mail_dir.glob("*.eml")):
            msg = message_from_bytes(path.read_bytes(), policy=default)
            if msg["X-Kortflyt-Order"] in latest:
                mails[(msg["X-Kortflyt-Order"], msg["X-Kortflyt-Status"])] = (path, msg)
        if expected <= set(mails):
            break
        await asyncio.sleep(0.5)
    manifest = profile.spool_dir / "manifest.jsonl"
    lines = manifest.read_text().splitlines() if manifest.exists() else []
    printed = [json.loads(line) for line in lines if json.loads(line)["order_id"] in latest]
    print(f"\nPrint files (the card printer's hot folder, {profile.spool_dir}):")
    for entry in printed:
        print(f"  {entry['order_id']:16} {profile.spool_dir / entry['file']}")
    print(
        f"\nE-mails to the employers (mail sink, {profile.mail_dir}; .eml opens in any mail app):"
    )
    proofs = profile.state / "proofs"
    for (order_id, status), (path, msg) in sorted(mails.items()):
        print(f"  {order_id:16} {status:20} {path.name}")
        for attachment in msg.iter_attachments():
            proofs.mkdir(parents=True, exist_ok=True)
            (proofs / attachment.get_filename()).write_bytes(attachment.get_content())
    if proofs.exists():
        print(f"\nProofs of order (attached to the RECEIVED e-mails) are also saved in {proofs};")
        key = profile.env()["KORTFLYT_PROOF_PUBLIC_KEY_FILE"]
        print(
            "check one with: .venv/bin/python -m services.notify.proof verify FILE"
            f" --public-key {key}"
        )


async def main_async(timeout_s: float) -> int:
    settings = Settings()
    run = uuid.uuid4().hex[:6].upper()
    samples = sample_orders(run)
    ids = [f"DEMO-{run}-{i}" for i in range(1, len(samples) + 1)]
    await publish(settings, [(oid, raw) for oid, (_, raw) in zip(ids, samples, strict=True)])
    print(f"published {len(samples)} sample orders to {ORDER_SUBMITTED}; waiting for outcomes")
    with console.status("waiting for every sample order's final status"):
        latest, dead = await follow_statuses(settings, set(ids), timeout_s)
    rows: list[tuple[str, ...]] = []
    for oid, (label, _) in zip(ids, samples, strict=True):
        s = latest.get(oid)
        missing = "(dead-lettered: no readable order)" if oid in dead else "(none yet)"
        rows.append(
            (
                oid,
                label,
                s.status.value if s else missing,
                s.stage if s else "",
                s.card_number or "" if s else "",
                ", ".join(f"{r.code.value} [{r.check}]" for r in s.reasons) if s else "",
            )
        )
    console.print(table(("order", "sample", "status", "stage", "card", "reasons"), rows))
    # What an employer reads for a rejected photo (and, failing that, any rejection).
    reasons = [r for s in latest.values() for r in s.reasons]
    shown: Any = next((r for r in reasons if r.check == "documents.photo"), None) or next(
        iter(reasons), None
    )
    if shown is not None:
        print(f"\nWhat the employer is told, e.g. {shown.code.value}:")
        print(f"  nb: {shown.message_nb}\n  en: {shown.message_en}")
    await show_cards_and_mail(PROFILES[os.environ.get("KORTFLYT_PROFILE", "dev")], latest)
    finished = {k for k, s in latest.items() if s.status in FINAL_STATUSES} | dead
    if finished != set(ids):
        print(
            f"\n{len(set(ids) - finished)} order(s) did not finish within {timeout_s:.0f}s:"
            " see `make status` and the logs under .state/dev/logs/"
        )
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=120.0)
    return asyncio.run(main_async(parser.parse_args().timeout))


if __name__ == "__main__":
    sys.exit(main())

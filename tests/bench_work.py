"""The pipeline's per-order work alone: no Kafka, no PostgreSQL, one process, one order after
the other. Its throughput is the work-only limit the pipeline is measured against.

    python -m tests.bench_work [--orders 200]     # CPU ms per order and step, then JSON

The work-only limit is the machine's CPUs divided by the CPU time one order's work takes
(2 CPUs, 58 ms: 34 orders/s): what the pipeline would do if moving orders cost nothing.

`tests.bench` runs it on the same orders as its pipeline run (`work_only`). Each order goes
through the services' own work functions, in the order the pipeline does them:

- intake: the submission parsed and validated (shared.events), its photo and ID copy
  inspected (services.intake.documents.inspect; the files under the upload directory);
- registry_check: `run_checks` and `decide` through the real register adapters, their
  client answering in memory from the fake registers' seed (canned answers, the same
  records devtools.fakes.registers serves; no HTTP), then `approved_facts` for
  order.approved;
- production: the card's face (validity, employer, signed QR URL) and its print file
  (services.production.printfile.render_card) with the photo intake stored;
- notify: the RECEIVED e-mail with its signed proof of order and the PRODUCED e-mail
  (Notify's own composition: templates, proof, mail).
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose: that is its whole output.

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devtools.fakes.register_data import default_seed
from services.intake.documents import Inspected, inspect
from services.notify.contacts import contact_of
from services.notify.mail import message_id
from services.notify.stage import Notify
from services.notify.templates import Card as MailedCard
from services.production.cards import Card
from services.production.printfile import render_card
from services.production.spooler import face_of
from services.registry_check.adapters import (
    PERSON_HEADER,
    HttpAaRegisteret,
    HttpBemanningsforetaksregisteret,
    HttpEnhetsregisteret,
    HttpFolkeregisteret,
    HttpRenholdsregisteret,
    RegisterClient,
    Registers,
)
from services.registry_check.checks import run_checks
from services.registry_check.domain import Register, decide
from services.registry_check.stage import approved_facts
from shared.events import OrderAccepted, OrderApproved, OrderStatusChanged, OrderSubmitted, Status
from shared.identifiers import card_number
from shared.submission import SubmissionSeen
from tests.settings import AllSettings

STEPS = ("intake", "registry_check", "production", "notify")
T = TypeVar("T")


class WorkError(Exception):
    """An order did not go through the work the way the pipeline's orders do."""


# --------------------------------------------------------------------------- registers


def _answer(
    collections: dict[str, dict[str, Any]], register: str, path: str, person: str
) -> tuple[int, Any]:
    """(status, body) of the fake registers (devtools/fakes/registers.py) for one request."""
    parts = path.strip("/").split("/")
    if register == "enhetsregisteret":
        kind, org = parts[0], parts[1]
        if len(parts) == 3:  # /enheter/{org}/roller
            return 200, collections["roller"].get(org)
        gone = collections["slettede" if kind == "enheter" else "slettede_underenheter"]
        if org in gone:
            return 410, gone[org]
        return 200, collections[kind].get(org)
    if register in ("renholdsregisteret", "bemanningsforetaksregisteret"):
        collection = "renhold" if register == "renholdsregisteret" else "bemanning"
        return 200, collections[collection].get(parts[-1])
    if register == "aaregisteret":
        return 200, collections["arbeidsforhold"].get(person)
    return 200, collections["personer"].get(parts[-1])


class CannedClient(RegisterClient):
    """A register's client answered in memory: the register answers (JSON bytes) are made
    once, the adapters parse them on every question."""

    def __init__(self, register: Register, collections: dict[str, dict[str, Any]]) -> None:
        super().__init__(register, f"http://{register.value}.canned", timeout_s=1)
        self.collections = collections
        self.cache: dict[tuple[str, str], tuple[int, bytes]] = {}

    async def _get(
        self,
        path: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        token: str,
    ) -> tuple[int, bytes]:
        key = (path, (headers or {}).get(PERSON_HEADER, ""))
        if key not in self.cache:
            status, body = _answer(self.collections, self.register.value, *key)
            if body is None:
                status, body = 404, {"feilmelding": "ikke funnet"}
            self.cache[key] = (status, json.dumps(body).encode())
        return self.cache[key]


def canned_registers() -> Registers:
    """The five register adapters, answered in memory from the default seed."""
    collections = default_seed().to_json()
    return Registers(
        enhetsregisteret=HttpEnhetsregisteret(CannedClient(Register.ENHETSREGISTERET, collections)),
        renholdsregisteret=HttpRenholdsregisteret(
            CannedClient(Register.RENHOLDSREGISTERET, collections)
        ),
        bemanningsforetaksregisteret=HttpBemanningsforetaksregisteret(
            CannedClient(Register.BEMANNINGSFORETAKSREGISTERET, collections)
        ),
        aaregisteret=HttpAaRegisteret(CannedClient(Register.AAREGISTERET, collections)),
        folkeregisteret=HttpFolkeregisteret(CannedClient(Register.FOLKEREGISTERET, collections)),
    )


# --------------------------------------------------------------------------- the work


@dataclass
class WorkResult:
    """The work's cost. Measured in CPU time, which other processes on the machine change
    little (the wall time of one process on a busy machine is mostly waiting)."""

    orders: int
    seconds: float = 0.0  # wall time of the whole work, one order after the other
    cpu_s: float = 0.0  # this process's CPU time over it
    step_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def cpu_ms_per_order(self) -> float:
        return self.cpu_s / self.orders * 1000

    @property
    def orders_per_s(self) -> float:
        """The work-only limit: orders per second if every CPU of the machine did nothing
        but this work (CPUs / CPU seconds per order)."""
        return self.cpus * self.orders / self.cpu_s if self.cpu_s > 0 else float("inf")

    def step_ms_per_order(self) -> dict[str, float]:
        """CPU milliseconds per order of each service's work."""
        return {s: round(v / self.orders * 1000, 2) for s, v in self.step_s.items()}


def _document(url: str) -> bytes:
    """A `file://` document of the bench's orders (devtools.factories.sample_documents)."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise WorkError(f"the work-only bench reads file:// documents only, not {parsed.scheme}")
    return Path(unquote(parsed.path)).read_bytes()


class Work:
    """The services' work functions, with what they need made once (keys, registers)."""

    def __init__(self, settings: AllSettings) -> None:
        self.settings = settings
        # Fresh keys: signing costs the same with any Ed25519 key, and the profile's own
        # key files stay untouched.
        self.card_key = Ed25519PrivateKey.generate()
        self.notify = Notify(settings, Ed25519PrivateKey.generate())
        self.registers = canned_registers()
        self.documents: dict[str, bytes] = {}
        self.sequence = 0

    def _fetch(self, url: str) -> bytes:
        # Fetching is I/O (the document store): read each file once, outside the timing.
        if url not in self.documents:
            self.documents[url] = _document(url)
        return self.documents[url]

    def intake(self, raw: bytes) -> tuple[OrderAccepted, bytes]:
        event = OrderSubmitted.model_validate_json(raw)
        photo = inspect(
            "photo", self._fetch(event.documents.photo.url), event.documents.photo.sha256
        )
        id_copy = inspect(
            "id_copy", self._fetch(event.documents.id_copy.url), event.documents.id_copy.sha256
        )
        if not isinstance(photo, Inspected) or not isinstance(id_copy, Inspected):
            raise WorkError(f"intake rejects the documents of {event.order_id}")
        accepted = OrderAccepted(
            order_id=event.order_id,
            revision=event.revision,
            order=event.details(),
            documents=event.documents,
            photo_key="photo",
        )
        return accepted, photo.stored

    async def registry_check(self, accepted: OrderAccepted, today: date) -> OrderApproved:
        checked = await run_checks(self.registers, accepted.order, today)
        decision = decide(checked.results)
        if decision.status is not Status.APPROVED:
            raise WorkError(f"registry_check does not approve {accepted.order_id}")
        return OrderApproved(
            order_id=accepted.order_id,
            revision=accepted.revision,
            order=accepted.order,
            checks=[],
            photo_key=accepted.photo_key,
            **approved_facts(accepted, checked.approval),
        )

    def production(self, approved: OrderApproved, photo: bytes, today: date) -> Card:
        self.sequence += 1
        card = Card.issue(card_number(self.sequence), approved, today)
        render_card(face_of(card, self.settings, self.card_key), photo)
        return card

    def notify_mails(self, raw: bytes, card: Card) -> None:
        contact = contact_of(SubmissionSeen.model_validate_json(raw))
        mailed = MailedCard(card.card_number, card.issued_on, card.valid_until)
        domain = self.notify.domain
        for status, mailed_card in ((Status.RECEIVED, None), (Status.PRODUCED, mailed)):
            event = OrderStatusChanged(
                order_id=contact.order_id,
                revision=contact.revision,
                status=status,
                stage="bench",
                card_number=card.card_number if mailed_card else None,
            )
            msg_id = message_id(event.order_id, event.revision, status, domain)
            self.notify._compose(event, contact, mailed_card, msg_id)

    async def one(self, raw: bytes, result: WorkResult) -> None:
        today = datetime.now(UTC).date()
        accepted, photo = _timed(result, "intake", self.intake, raw)
        start = time.process_time()
        approved = await self.registry_check(accepted, today)
        result.step_s["registry_check"] += time.process_time() - start
        card = _timed(result, "production", self.production, approved, photo, today)
        _timed(result, "notify", self.notify_mails, raw, card)


def _timed(result: WorkResult, step: str, work: Callable[..., T], *args: Any) -> T:
    start = time.process_time()
    try:
        return work(*args)
    finally:
        result.step_s[step] += time.process_time() - start


async def work_only(settings: AllSettings, orders: Sequence[tuple[str, bytes]]) -> WorkResult:
    """Every order's work, one after the other, in this process; the first order once more
    before the timing so fonts, keys and imports are loaded (as in a warm service)."""
    work = Work(settings)
    await work.one(orders[0][1], WorkResult(1))
    result = WorkResult(len(orders))
    start, cpu = time.perf_counter(), time.process_time()
    for _key, raw in orders:
        await work.one(raw, result)
    result.seconds = time.perf_counter() - start
    result.cpu_s = time.process_time() - cpu
    return result


def print_result(result: WorkResult) -> None:
    per_order = result.step_ms_per_order()
    print(
        f"work only ({result.orders} orders, one process, no Kafka, no PostgreSQL): "
        f"{result.cpu_ms_per_order:.1f} CPU ms per order "
        f"({', '.join(f'{s} {ms:.1f}' for s, ms in per_order.items())}; "
        f"{result.seconds / result.orders * 1000:.1f} ms wall): a limit of "
        f"{result.orders_per_s:.1f} orders/s on {result.cpus} CPUs"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200, help="N, default 200")
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    from deploy.dev import PROFILES
    from tests.bench import make_orders

    name = os.environ.get("KORTFLYT_PROFILE", "test")
    if not (name.startswith("test") and name in PROFILES):
        parser.error(f"a test profile only, not {name!r} (KORTFLYT_PROFILE)")
    for key, value in PROFILES[name].env().items():
        os.environ.setdefault(key, value)
    orders = make_orders("WORK", args.orders)
    result = asyncio.run(work_only(AllSettings(), orders))
    print_result(result)
    print(
        json.dumps(
            {
                "work_only_orders_per_s": round(result.orders_per_s, 1),
                "cpu_ms_per_order": round(result.cpu_ms_per_order, 2),
                "wall_ms_per_order": round(result.seconds / result.orders * 1000, 2),
                "step_ms_per_order": result.step_ms_per_order(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Statuses and reason codes as the console names them (bokmål first, English beside)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import Status
from shared.reasons import CATALOGUE, ReasonCode

STATUS_NAMES: dict[Status, tuple[str, str]] = {
    Status.RECEIVED: ("Mottatt", "Received"),
    Status.DOCUMENTS_REJECTED: ("Dokumenter avvist", "Documents rejected"),
    Status.ACCEPTED: ("Godtatt", "Accepted"),
    Status.CHECKING: ("Kontrolleres", "Checking"),
    Status.AWAITING_REGISTER: ("Venter på register", "Awaiting register"),
    Status.APPROVED: ("Godkjent", "Approved"),
    Status.REJECTED: ("Avvist", "Rejected"),
    Status.NEEDS_ATTENTION: ("Trenger behandling", "Needs attention"),
    Status.IN_PRODUCTION: ("I produksjon", "In production"),
    Status.PRODUCED: ("Produsert", "Produced"),
    Status.CANCELLED: ("Kansellert", "Cancelled"),
}


@dataclass(frozen=True)
class Named:
    code: str
    nb: str
    en: str


STATUSES = [Named(s.value, *STATUS_NAMES[s]) for s in Status]


def reason_codes() -> list[Named]:
    return [Named(c.value, CATALOGUE[c].nb, CATALOGUE[c].en) for c in ReasonCode]

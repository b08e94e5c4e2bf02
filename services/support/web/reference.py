"""Statuses and reason codes as the console names them (bokmål first, English beside)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import STATUS_LABEL, Status
from shared.reasons import CATALOGUE, ReasonCode


@dataclass(frozen=True)
class Named:
    code: str
    nb: str
    en: str


STATUSES = [Named(s.value, *STATUS_LABEL[s]) for s in Status]


def reason_codes() -> list[Named]:
    return [Named(c.value, CATALOGUE[c].nb, CATALOGUE[c].en) for c in ReasonCode]

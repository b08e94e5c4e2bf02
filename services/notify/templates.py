"""What the employer is told, in bokmål and then English, in one message: pure text.

One template per kind of status that gets an e-mail (MAILED). Every reason of the status
is listed with its code and what to do; a rejection says how to contest it; a produced
card gives its number, issue date and last valid day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from shared.events import STATUS_LABEL, Reason, Status
from shared.norway import norwegian_date

# Every e-mail is written in bokmål, then English (as Content-Language would say it).
LANGUAGE = "nb, en"

MAILED = frozenset(
    {
        Status.RECEIVED,
        Status.DOCUMENTS_REJECTED,
        Status.REJECTED,
        Status.NEEDS_ATTENTION,
        Status.PRODUCED,
    }
)


CARD_TYPE_LABEL = {
    "construction": ("bygge- og anleggskort", "construction site card"),
    "cleaning": ("renholdskort", "cleaning card"),
}


@dataclass(frozen=True)
class Card:
    number: str
    issued_on: date
    valid_until: date


@dataclass(frozen=True)
class Notice:
    """What one e-mail is about."""

    order_id: str
    revision: int
    status: Status
    employer_name: str | None = None
    worker_name: str | None = None
    card_type: str | None = None
    reasons: Sequence[Reason] = field(default_factory=tuple)
    card: Card | None = None


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


def _reasons(reasons: Sequence[Reason], english: bool) -> list[str]:
    if not reasons:
        return ["  - (ingen årsak oppgitt)" if not english else "  - (no reason given)"]
    where = "field" if english else "felt"
    return [
        f"  - {r.message_en if english else r.message_nb} [{r.code.value}, {where}: {r.check}]"
        for r in reasons
    ]


def _about(n: Notice, english: bool) -> str:
    worker = n.worker_name or ("the worker" if english else "arbeidstakeren")
    kind_nb, kind_en = CARD_TYPE_LABEL.get(n.card_type or "", ("HMS-kort", "HMS card"))
    if english:
        return f"the HMS card ({kind_en}) for {worker}, order reference {n.order_id}"
    return f"HMS-kortet ({kind_nb}) for {worker}, bestillingsreferanse {n.order_id}"


def _body_nb(n: Notice) -> list[str]:
    about = _about(n, english=False)
    if n.status is Status.RECEIVED:
        return [
            f"Vi har mottatt bestillingen av {about}.",
            "",
            "Bestillingsbeviset er vedlagt (PDF). Arbeidstakeren kan vise det fram som "
            "dokumentasjon på at kortet er bestilt, til kortet kommer. Beviset er signert "
            "digitalt, slik at en kontrollør kan se at det er ekte.",
            "",
            "Vi sier fra når kortet er produsert, eller hvis noe må rettes.",
        ]
    if n.status is Status.DOCUMENTS_REJECTED:
        return [
            f"Bestillingen av {about} kan ikke behandles før dette er rettet:",
            *_reasons(n.reasons, english=False),
            "",
            "Rett det som står over og send bestillingen på nytt i portalen "
            "(samme bestillingsreferanse).",
        ]
    if n.status is Status.REJECTED:
        return [
            f"Bestillingen av {about} er avslått fordi:",
            *_reasons(n.reasons, english=False),
            "",
            "Slik klager du: mener du at avslaget er feil, kontakt kundestøtte og oppgi "
            f"bestillingsreferansen {n.order_id}. En saksbehandler kontrollerer saken og kan "
            "overprøve kontrollen. Du kan også rette opplysningene og sende bestillingen på nytt.",
        ]
    if n.status is Status.NEEDS_ATTENTION:
        return [
            f"Bestillingen av {about} må behandles av en saksbehandler:",
            *_reasons(n.reasons, english=False),
            "",
            "Kundestøtte følger opp saken. Gjør det årsakene over ber om; ellers trenger du "
            f"ikke gjøre noe. Oppgi bestillingsreferansen {n.order_id} hvis du kontakter oss.",
        ]
    if n.status is Status.PRODUCED and n.card is not None:
        return [
            f"{about[0].upper()}{about[1:]} er produsert.",
            "",
            f"  Kortnummer:   {n.card.number}",
            f"  Utstedt:      {norwegian_date(n.card.issued_on)}",
            f"  Gyldig til:   {norwegian_date(n.card.valid_until)}",
            "",
            "Kortet gjelder bare så lenge arbeidsforholdet varer. Bestill nytt kort før det "
            "går ut.",
        ]
    raise ValueError(f"no e-mail for status {n.status}")


def _body_en(n: Notice) -> list[str]:
    about = _about(n, english=True)
    if n.status is Status.RECEIVED:
        return [
            f"We have received the order for {about}.",
            "",
            "The proof of order is attached (PDF). The worker can show it as documentation "
            "that the card has been ordered until the card arrives. The proof is digitally "
            "signed, so an inspector can tell that it is genuine.",
            "",
            "We will tell you when the card has been produced, or if anything must be corrected.",
        ]
    if n.status is Status.DOCUMENTS_REJECTED:
        return [
            f"The order for {about} cannot be processed until this is corrected:",
            *_reasons(n.reasons, english=True),
            "",
            "Correct the above and submit the order again in the portal (same order reference).",
        ]
    if n.status is Status.REJECTED:
        return [
            f"The order for {about} has been rejected because:",
            *_reasons(n.reasons, english=True),
            "",
            "How to contest: if you believe the rejection is wrong, contact support and give "
            f"the order reference {n.order_id}. A case handler will review it and can "
            "override the check. You can also correct the details and submit the order again.",
        ]
    if n.status is Status.NEEDS_ATTENTION:
        return [
            f"The order for {about} must be handled by a case handler:",
            *_reasons(n.reasons, english=True),
            "",
            "Support will follow it up. Do what the reasons above ask; otherwise you need not "
            f"do anything. Give the order reference {n.order_id} if you contact us.",
        ]
    if n.status is Status.PRODUCED and n.card is not None:
        return [
            f"{about[0].upper()}{about[1:]} has been produced.",
            "",
            f"  Card number:  {n.card.number}",
            f"  Issued:       {norwegian_date(n.card.issued_on)}",
            f"  Valid until:  {norwegian_date(n.card.valid_until)}",
            "",
            "The card is valid only while the employment lasts. Order a new card before it "
            "expires.",
        ]
    raise ValueError(f"no e-mail for status {n.status}")


def render(n: Notice) -> MailText:
    """The e-mail for a status in MAILED; ValueError for any other (or PRODUCED without card)."""
    nb, en = STATUS_LABEL[n.status]
    subject = f"HMS-kort {n.order_id}: {nb} / {en}"
    greeting_nb = f"Hei{', ' + n.employer_name if n.employer_name else ''}!"
    greeting_en = f"Hello{', ' + n.employer_name if n.employer_name else ''},"
    lines = [
        "(English below)",
        "",
        greeting_nb,
        "",
        *_body_nb(n),
        "",
        f"Status: {nb} (revisjon {n.revision})",
        "",
        "Hilsen HMS-kort. Denne e-posten kan ikke besvares.",
        "",
        "-" * 60,
        "",
        greeting_en,
        "",
        *_body_en(n),
        "",
        f"Status: {en} (revision {n.revision})",
        "",
        "Regards, HMS-kort. This e-mail cannot be replied to.",
        "",
    ]
    return MailText(subject, "\n".join(lines))

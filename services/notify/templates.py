"""What the employer is told, in bokmål and then English, in one message: pure text.

One template per kind of status that gets an e-mail (MAILED). Every reason of the status
is listed with its code and what to do; a rejection says how to contest it; a produced
card gives its number, issue date and last valid day.

After production, one template per card notice (`CardNotice`, `render_card`): a card
suspended, reinstated or revoked (with its reasons and what to do), its expiry 30 days
ahead, and a lost card's replacement produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

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
    return _bilingual(
        f"HMS-kort {n.order_id}: {nb} / {en}",
        n.employer_name,
        [*_body_nb(n), "", f"Status: {nb} (revisjon {n.revision})"],
        [*_body_en(n), "", f"Status: {en} (revision {n.revision})"],
    )


def _bilingual(
    subject: str, employer_name: str | None, body_nb: list[str], body_en: list[str]
) -> MailText:
    """Every e-mail notify sends: bokmål first, then English, each greeted and signed."""
    name = f", {employer_name}" if employer_name else ""
    lines = [
        "(English below)",
        "",
        f"Hei{name}!",
        "",
        *body_nb,
        "",
        "Hilsen HMS-kort. Denne e-posten kan ikke besvares.",
        "",
        "-" * 60,
        "",
        f"Hello{name},",
        "",
        *body_en,
        "",
        "Regards, HMS-kort. This e-mail cannot be replied to.",
        "",
    ]
    return MailText(subject, "\n".join(lines))


# ---------------------------------------------------------------- cards after production

# What a card notice is about: the card's new status (card.status), its expiry 30 days
# ahead, or a replacement card produced.
CardNoticeKind = Literal["SUSPENDED", "ACTIVE", "REVOKED", "EXPIRES_SOON", "REPLACEMENT"]

CARD_NOTICE_LABEL: dict[CardNoticeKind, tuple[str, str]] = {
    "SUSPENDED": ("Kortet er sperret", "The card is suspended"),
    "ACTIVE": ("Kortet er gyldig igjen", "The card is valid again"),
    "REVOKED": ("Kortet er ugyldig", "The card is revoked"),
    "EXPIRES_SOON": ("Kortet går snart ut", "The card expires soon"),
    "REPLACEMENT": ("Nytt kort er produsert", "A new card has been produced"),
}


@dataclass(frozen=True)
class CardNotice:
    """What one card e-mail is about."""

    order_id: str
    kind: CardNoticeKind
    card: Card
    employer_name: str | None = None
    worker_name: str | None = None
    card_type: str | None = None
    reasons: Sequence[Reason] = field(default_factory=tuple)
    replaces: str | None = None  # the lost card a replacement replaces


def _card_body(n: CardNotice, english: bool) -> list[str]:
    about = _about(
        Notice(n.order_id, 0, Status.PRODUCED, n.employer_name, n.worker_name, n.card_type),
        english,
    )
    number = n.card.number
    last_day = norwegian_date(n.card.valid_until)
    if n.kind == "SUSPENDED":
        if english:
            head = f"Card {number}, {about}, is suspended and not valid for now, because:"
            tail = "Do what the reasons above ask; the card is valid again once they are met."
        else:
            head = f"Kort {number}, {about}, er sperret og gjelder ikke nå, fordi:"
            tail = "Gjør det årsakene over ber om; kortet blir gyldig igjen når de er oppfylt."
        return [head, *_reasons(n.reasons, english), "", tail]
    if n.kind == "ACTIVE":
        if english:
            return [
                f"Card {number}, {about}, is valid again: the suspension has been lifted.",
                "",
                f"The card is valid until {last_day}. You need not do anything.",
            ]
        return [
            f"Kort {number}, {about}, er gyldig igjen: sperringen er opphevet.",
            "",
            f"Kortet gjelder til {last_day}. Du trenger ikke gjøre noe.",
        ]
    if n.kind == "REVOKED":
        if english:
            head = f"Card {number}, {about}, has been revoked and is no longer valid, because:"
            tail = "The card can never be valid again. Ask the worker to hand it in or destroy it."
        else:
            head = f"Kort {number}, {about}, er gjort ugyldig og gjelder ikke lenger, fordi:"
            tail = (
                "Kortet kan ikke bli gyldig igjen. Be arbeidstakeren levere det inn eller "
                "makulere det."
            )
        return [head, *_reasons(n.reasons, english), "", tail]
    if n.kind == "EXPIRES_SOON":
        if english:
            return [
                f"Card {number}, {about}, expires on {last_day} (in 30 days or less).",
                "",
                "If the worker still needs a card, order a new one in the portal now, so it "
                "arrives before this one expires.",
            ]
        return [
            f"Kort {number}, {about}, går ut {last_day} (om 30 dager eller mindre).",
            "",
            "Trenger arbeidstakeren fortsatt kort, bestill nytt i portalen nå, så det kommer "
            "før dette går ut.",
        ]
    if english:
        return [
            f"A new card has been produced for {about}"
            + (f", replacing card {n.replaces}, which is revoked." if n.replaces else "."),
            "",
            f"  Card number:  {number}",
            f"  Issued:       {norwegian_date(n.card.issued_on)}",
            f"  Valid until:  {last_day}",
            "",
            "Use the new card only; the old one is no longer valid.",
        ]
    return [
        f"Et nytt kort er produsert for {about}"
        + (f", til erstatning for kort {n.replaces}, som er ugyldig." if n.replaces else "."),
        "",
        f"  Kortnummer:   {number}",
        f"  Utstedt:      {norwegian_date(n.card.issued_on)}",
        f"  Gyldig til:   {last_day}",
        "",
        "Bruk bare det nye kortet; det gamle gjelder ikke lenger.",
    ]


def render_card(n: CardNotice) -> MailText:
    """The e-mail of a card notice, bokmål and then English."""
    nb, en = CARD_NOTICE_LABEL[n.kind]
    return _bilingual(
        f"HMS-kort {n.card.number}: {nb} / {en}",
        n.employer_name,
        [*_card_body(n, english=False), "", f"Bestillingsreferanse: {n.order_id}"],
        [*_card_body(n, english=True), "", f"Order reference: {n.order_id}"],
    )

"""verify's web pages and JSON API (Starlette + Jinja2): public, read-only, built for a phone.

    GET /                               start page: type a card number
    GET /kort?nr=<card number>          -> /kort/<card number>
    GET /kort/<token>                   a card by its QR code: verdict, photo, name, employer
    GET /kort/<card number>             a bare number: verdict and card type only (rate-limited)
    GET /bestilling/<token>             a proof of order by its QR code: live order status
    GET /virksomhet/<org number>        an employer: how many valid cards, no personal data
    GET /foto/<token>                   the photo, only for a genuine token
    GET /.well-known/hmskort-keys.json  the verification keys (JWK set)

Every answer is HTML, or JSON when the client asks for `application/json` (docs/
verification.md). Every response carries a strict Content-Security-Policy (no script at
all, nothing from elsewhere), `Referrer-Policy: no-referrer` (a token never leaks to
another site) and `Cache-Control: no-store` (a status is live).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from services.verify.domain import (
    APPROVAL_LABEL,
    CARD_TYPE_LABEL,
    ORDER_STATE_LABEL,
    VALID_ON,
    VERDICT_LABEL,
    OrderState,
    RateLimiter,
    Verdict,
    card_verdict,
    expires_soon,
    order_state,
)
from services.verify.keys import KeyRing
from services.verify.repository import CardRow, Lookups
from services.verify.settings import VerifySettings
from services.verify.stage import Verify
from shared.blobstore import BlobNotFoundError, BlobStore, DirectoryBlobStore
from shared.db import create_pool, migrate
from shared.events import STATUS_LABEL, Status
from shared.identifiers import is_valid_card_number, is_valid_org_number
from shared.logging import get_logger
from shared.norway import OSLO, norwegian_date, today_in_norway
from shared.qrtoken import Checked, Kind, Payload

log = get_logger(__name__)
HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
    " base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def iso_day(iso: str | None) -> str:
    return norwegian_date(date.fromisoformat(iso)) if iso else "-"


def norwegian_time(iso: str | None) -> str:
    """An ISO timestamp as Norwegian local time: 30.11.2026 kl. 21:39."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(OSLO).strftime("%d.%m.%Y kl. %H:%M")


ENV.filters["day"] = iso_day
ENV.filters["moment"] = norwegian_time


class VerifyApp:
    """The routes, with their dependencies given (tests pass their own pool and keys)."""

    def __init__(
        self,
        lookups: Lookups,
        keys: KeyRing,
        blobs: BlobStore,
        limiter: RateLimiter,
        today: Callable[[], date] = today_in_norway,
    ) -> None:
        self.lookups = lookups
        self.keys = keys
        self.blobs = blobs
        self.limiter = limiter
        self.today = today

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.start),
            Route("/health", self.health),
            Route("/kort", self.card_form),
            Route("/kort/{token}", self.card),
            Route("/bestilling/{token}", self.order),
            Route("/virksomhet/{org_number}", self.employer),
            Route("/foto/{token}", self.photo),
            Route("/.well-known/hmskort-keys.json", self.jwks),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]

    # ------------------------------------------------------------------ responses

    def answer(
        self, request: Request, template: str, data: dict[str, Any], status: int = 200
    ) -> Response:
        if wants_json(request):
            return JSONResponse(data, status_code=status)
        html = ENV.get_template(template).render(**data, labels=_LABELS)
        return HTMLResponse(html, status_code=status)

    # ------------------------------------------------------------------ pages

    async def start(self, request: Request) -> Response:
        return self.answer(request, "start.html", {})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def card_form(self, request: Request) -> Response:
        number = re.sub(r"[^0-9]", "", request.query_params.get("nr", ""))[:20]
        return RedirectResponse(f"/kort/{number}" if number else "/", status_code=303)

    async def card(self, request: Request) -> Response:
        token = request.path_params["token"]
        if token.isascii() and token.isdigit():
            return await self._bare_card(request, token)
        checked = self.keys.check(token)
        if not checked.genuine or checked.payload is None or checked.payload.kind != "card":
            return self._not_genuine(request, checked, "card")
        signed = checked.payload
        row = await self.lookups.card(signed.id)
        today = self.today()
        if row is None:
            log.info("verify.card_checked", verdict=Verdict.UNKNOWN.value, signed=True)
            return self.answer(
                request,
                "card.html",
                _verdict(Verdict.UNKNOWN)
                | {"kind": "card", "signed": True, "genuine": True, "found": False},
            )
        if not _is_card(row, signed):
            # Signed by us, but not this card as registered: never vouch for it.
            log.warning("verify.card_differs", card_number=row.card_number)
            return self._not_genuine(request, checked, "card", differs=True)
        verdict = card_verdict(row.status, row.valid_until, today)
        log.info("verify.card_checked", verdict=verdict.value, signed=True)
        return self.answer(
            request,
            "card.html",
            _verdict(verdict)
            | {
                "kind": "card",
                "signed": True,
                "genuine": True,
                "found": True,
                "card": {
                    **_card_basics(row.card_number, row.card_type),
                    "holder_name": row.holder_name,
                    "employer": {"org_number": row.employer_org_number, "name": row.employer_name},
                    "issued_on": row.issued_on.isoformat(),
                    "valid_until": row.valid_until.isoformat(),
                    "expires_soon": expires_soon(verdict, row.valid_until, today),
                    "status_since": row.status_since.isoformat(),
                    "status_reason_nb": row.status_reason_nb,
                    "status_reason_en": row.status_reason_en,
                    "photo_url": f"/foto/{token}" if row.photo_key else None,
                },
            },
        )

    async def _bare_card(self, request: Request, number: str) -> Response:
        client = request.client.host if request.client else "unknown"
        if not self.limiter.allow(client):
            log.info("verify.rate_limited")
            limited = {
                "error": "RATE_LIMITED",
                "message_nb": "For mange oppslag. Prøv igjen om et minutt, eller skann QR-koden.",
                "message_en": "Too many look-ups. Try again in a minute, or scan the QR code.",
            }
            response = self.answer(request, "error.html", limited, status=429)
            response.headers["Retry-After"] = "60"
            return response
        row = await self.lookups.card(number) if is_valid_card_number(number) else None
        verdict = card_verdict(
            row.status if row else None, row.valid_until if row else None, self.today()
        )
        log.info("verify.card_checked", verdict=verdict.value, signed=False)
        data: dict[str, Any] = _verdict(verdict)
        data |= {"kind": "card", "signed": False, "found": row is not None}
        if row is not None:
            data["card"] = _card_basics(row.card_number, row.card_type)
        return self.answer(request, "card.html", data)

    def _not_genuine(
        self, request: Request, checked: Checked, kind: Kind, differs: bool = False
    ) -> Response:
        problem = (
            "DIFFERS_FROM_REGISTER"
            if differs
            else (checked.problem.value if checked.problem else "WRONG_KIND")
        )
        log.info("verify.not_genuine", kind=kind, problem=problem)
        data = _verdict(Verdict.UNKNOWN) | {
            "kind": kind,
            "signed": True,
            "genuine": False,
            "found": False,
            "problem": problem,
        }
        return self.answer(request, "card.html" if kind == "card" else "order.html", data)

    async def order(self, request: Request) -> Response:
        token = request.path_params["token"]
        checked = self.keys.check(token)
        if not checked.genuine or checked.payload is None or checked.payload.kind != "order":
            return self._not_genuine(request, checked, "order")
        signed = checked.payload
        row = await self.lookups.order(signed.id)
        state = order_state(row.status if row else None)
        label_nb, label_en = ORDER_STATE_LABEL[state]
        data: dict[str, Any] = {
            "kind": "order",
            "signed": True,
            "genuine": True,
            "found": row is not None,
            "state": state.value,
            "verdict_nb": label_nb,
            "verdict_en": label_en,
            "order": {
                "order_id": signed.id,
                "worker_name": signed.name,
                "employer": {
                    "org_number": signed.org_number,
                    "name": row.employer_name if row else None,
                },
                "ordered_on": signed.day.isoformat(),
            },
        }
        if row is not None:
            status = Status(row.status)
            data["order"] |= {
                "status": status.value,
                "status_nb": STATUS_LABEL[status][0],
                "status_en": STATUS_LABEL[status][1],
                "status_since": row.updated_at.isoformat(),
                "on_order_since": row.first_seen.isoformat(),
                "card_number": row.card_number if state is OrderState.PRODUCED else None,
                "photo_url": f"/foto/{token}" if row.photo_key else None,
            }
        log.info("verify.order_checked", state=state.value)
        return self.answer(request, "order.html", data)

    async def employer(self, request: Request) -> Response:
        org_number = request.path_params["org_number"]
        if not is_valid_org_number(org_number):
            error = {
                "error": "ORG_NUMBER_INVALID",
                "message_nb": "Ugyldig organisasjonsnummer (9 siffer med kontrollsiffer).",
                "message_en": "Not a valid organisation number (9 digits with a check digit).",
            }
            return self.answer(request, "error.html", error, status=400)
        found = await self.lookups.employer(org_number, self.today())
        data: dict[str, Any] = {
            "org_number": found.org_number,
            "name": found.name,
            "valid_cards": sum(found.valid.values()),
            "valid_cards_by_type": {t: found.valid.get(t, 0) for t in CARD_TYPE_LABEL},
            "checked_on": self.today().isoformat(),
            # as kortflyt's own register checks last found it; null: never checked here
            "approvals": {
                register: (
                    {
                        "approved": a.approved,
                        "checked_on": a.checked_at.astimezone(OSLO).date().isoformat(),
                    }
                    if (a := found.approvals.get(register))
                    else None
                )
                for register in APPROVAL_LABEL
            },
        }
        return self.answer(request, "employer.html", data)

    async def photo(self, request: Request) -> Response:
        checked = self.keys.check(request.path_params["token"])
        if not checked.genuine or checked.payload is None:
            return Response(status_code=404)
        signed = checked.payload
        if signed.kind == "card":
            card = await self.lookups.card(signed.id)
            key = card.photo_key if card and _is_card(card, signed) else None
        else:
            order = await self.lookups.order(signed.id)
            key = order.photo_key if order else None
        if key is None:
            return Response(status_code=404)
        try:
            data = await self.blobs.get(key)
        except (BlobNotFoundError, ValueError):
            return Response(status_code=404)
        return Response(data, media_type="image/jpeg")

    async def jwks(self, request: Request) -> Response:
        response = JSONResponse(self.keys.keys.jwks())
        response.headers["Access-Control-Allow-Origin"] = "*"  # any inspector's app may fetch it
        return response


def _is_card(row: CardRow, signed: Payload) -> bool:
    """Whether a signed card payload is this card as the register has it."""
    return (row.holder_name, row.employer_org_number, row.valid_until) == (
        signed.name,
        signed.org_number,
        signed.day,
    )


def _verdict(verdict: Verdict) -> dict[str, Any]:
    nb, en = VERDICT_LABEL[verdict]
    return {"verdict": verdict.value, "verdict_nb": nb, "verdict_en": en}


def _card_basics(card_number: str, card_type: str) -> dict[str, Any]:
    nb, en = CARD_TYPE_LABEL.get(card_type, (card_type, card_type))
    return {
        "card_number": card_number,
        "card_type": card_type,
        "card_type_nb": nb,
        "card_type_en": en,
        "valid_on": list(VALID_ON.get(card_type, ())),
    }


_LABELS = {"card_type": CARD_TYPE_LABEL, "approval": APPROVAL_LABEL}


def security_headers(
    app: Callable[[Any, Any, Any], Awaitable[None]],
) -> Callable[[Any, Any, Any], Awaitable[None]]:
    """Pure ASGI middleware: the security headers on every HTTP response."""
    extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def create_app(settings: VerifySettings) -> Callable[[Any, Any, Any], Awaitable[None]]:
    """The ASGI app from settings, with its own read pool, opened (and the schema migrated,
    idempotently) at startup so a page never queries tables that do not exist yet."""
    lookups = Lookups()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await migrate(settings.database_url, Verify.name, Verify.migrations)
        lookups.pool = await create_pool(settings.database_url, Verify.name, settings.db_pool_max)
        try:
            yield
        finally:
            await lookups.pool.close()

    verify = VerifyApp(
        lookups,
        KeyRing.from_settings(settings),
        DirectoryBlobStore(Path(settings.blob_dir)),
        RateLimiter(settings.verify_bare_lookups_per_minute),
    )
    return security_headers(Starlette(routes=verify.routes(), lifespan=lifespan))

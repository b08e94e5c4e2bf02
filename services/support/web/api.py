"""The JSON API under /api/v1/: the same queries and commands as the console's pages.

Clients sign in with `POST /api/v1/login` and send the token it returns as
`Authorization: Bearer <token>` (no CSRF token needed: nothing ambient); a browser with
the console's session cookie may call it too, with `X-CSRF-Token` on every POST.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.support.funnel import BadMonth, FunnelReport, Month
from services.support.web.auth import Accounts, Forbidden, Role, session_token
from services.support.web.commands import Refused
from services.support.web.deps import Operator, Viewer, commands, queries
from services.support.web.queries import OrderFilter
from services.support.web.render import csv_response
from shared.events import Status
from shared.norway import OSLO

router = APIRouter(tags=["support"])


class LoginRequest(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class LoginResponse(BaseModel):
    token: str
    name: str
    role: Role


class ReasonOut(BaseModel):
    code: str
    check: str
    message_nb: str
    message_en: str
    retryable: bool = False


class OrderOut(BaseModel):
    order_id: str
    revision: int
    status: str
    stage: str
    reasons: list[ReasonOut]
    card_number: str | None
    first_seen: datetime
    updated_at: datetime
    card_type: str | None
    employer_org_number: str | None
    employer_name: str | None
    birth_date: date | None


class OrdersOut(BaseModel):
    orders: list[OrderOut]
    total: int
    page: int
    pages: int


class FunnelOut(BaseModel):
    ordered: int
    produced: int
    rejected: int
    needs_attention: int
    cancelled: int
    in_progress: int


class OverviewOut(BaseModel):
    by_status: dict[str, int]
    attention_by_reason: dict[str, int]
    oldest_waiting: OrderOut | None
    today: FunnelOut
    week: FunnelOut


class TimelineOut(BaseModel):
    revision: int
    status: str
    stage: str
    reasons: list[ReasonOut]
    card_number: str | None
    occurred_at: datetime


class CheckOut(BaseModel):
    check: str
    outcome: str
    source: str | None = None
    code: str | None = None
    detail: str = ""
    checked_at: datetime


class CommandOut(BaseModel):
    command_id: str
    service: str
    command: str
    actor: str
    reason: str | None
    issued_at: datetime
    outcome: str
    handled_at: datetime


class CardOut(BaseModel):
    card_number: str
    issued_on: date
    valid_until: date
    status: str  # ACTIVE, SUSPENDED, REVOKED, EXPIRED (card.status)
    status_since: datetime | None = None
    reasons: list[ReasonOut] = []


class CardEventOut(BaseModel):
    """One step of a card's history: produced, or a status change (card.status)."""

    card_number: str
    event: Literal["produced", "status"]
    status: str
    reasons: list[ReasonOut]
    valid_until: date
    occurred_at: datetime


class EmailOut(BaseModel):
    """One e-mail notify sent the employer; the address masked (never in full)."""

    revision: int
    kind: str
    language: str
    recipient_masked: str
    subject: str
    sent_at: datetime
    outcome: Literal["sent", "refused", "unconfirmed"]
    attempts: int


class OrderDetailOut(BaseModel):
    order: OrderOut
    timeline: list[TimelineOut]
    checks: list[CheckOut]
    checks_revision: int | None
    card: CardOut | None
    card_history: list[CardEventOut]
    commands: list[CommandOut]
    overridable: list[str]
    emails: list[EmailOut]


class OverrideIn(BaseModel):
    check: str = Field(max_length=40)
    reason: str = Field(min_length=1, max_length=200)


class ReplayIn(BaseModel):
    reason: str | None = Field(default=None, max_length=200)
    # Past the replay limit per order (shared/replays.py): supervisors only.
    lift_replay_limit: bool = False


class MeOut(BaseModel):
    name: str
    role: Role


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class CardCommandIn(BaseModel):
    card_number: str = Field(max_length=20)
    reason: str = Field(min_length=1, max_length=200)


class ReportLostIn(CardCommandIn):
    replacement: bool = True


class EndEmploymentIn(CardCommandIn):
    end_date: date | None = None


class SentOut(BaseModel):
    command_id: str
    summary: str


class NotProducedOut(BaseModel):
    status: str
    reason_code: str | None
    count: int


class FunnelRowOut(BaseModel):
    card_type: Literal["all", "construction", "cleaning"]
    ordered: int
    produced: int
    share_produced: float = Field(ge=0, le=1)
    lead_time_median_hours: float | None
    lead_time_p90_hours: float | None
    not_produced: list[NotProducedOut]
    # The cards of the row's orders by their status now (a replacement is one more card).
    cards: dict[Literal["ACTIVE", "SUSPENDED", "REVOKED", "EXPIRED"], int]


class FunnelReportOut(BaseModel):
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    total: FunnelRowOut
    card_types: list[FunnelRowOut]


class AuditOut(BaseModel):
    at: datetime
    service: str
    actor: str
    action: str
    order_id: str | None
    command_id: str | None
    reason: str | None
    detail: str


@router.post("/login", response_model=LoginResponse, responses={401: {}, 423: {}})
async def login(request: Request, body: LoginRequest) -> Any:
    accounts: Accounts = request.app.state.accounts
    client = request.client.host if request.client else "-"
    result = await accounts.login(body.username.strip(), body.password, f"api from {client}")
    if result.token is None or result.staff is None:
        locked = result.problem == "locked"
        return JSONResponse(
            {"detail": "account locked for now" if locked else "wrong user name or password"},
            423 if locked else 401,
        )
    return LoginResponse(token=result.token, name=result.staff.name, role=result.staff.role)


@router.post("/logout", status_code=204)
async def logout(request: Request, staff: Viewer) -> None:
    found = session_token(request)
    if found:
        accounts: Accounts = request.app.state.accounts
        await accounts.logout(found[0], staff.name)


@router.get("/me", response_model=MeOut)
async def me(staff: Viewer) -> Any:
    """Who the session or token belongs to, and the role it has now."""
    return MeOut(name=staff.name, role=staff.role)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, _staff: Viewer) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/overview", response_model=OverviewOut)
async def overview(request: Request, _staff: Viewer) -> Any:
    o = await queries(request).overview()
    return {
        "by_status": o.by_status,
        "attention_by_reason": dict(o.attention_by_reason),
        "oldest_waiting": o.oldest_waiting,
        "today": vars(o.today),
        "week": vars(o.week),
    }


@router.get("/orders", response_model=OrdersOut)
async def orders(
    request: Request,
    _staff: Viewer,
    status: Status | None = None,
    reason: Annotated[str | None, Query(max_length=60)] = None,
    org: Annotated[str | None, Query(max_length=9)] = None,
    card_type: Literal["construction", "cleaning"] | None = None,
    # A day (Oslo; `until` includes it) or an RFC 3339 time (`until` excludes it).
    since: Annotated[str | None, Query(max_length=40, examples=["2026-06-03"])] = None,
    until: Annotated[str | None, Query(max_length=40, examples=["2026-06-03T12:00:00Z"])] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    sort: Literal["newest", "oldest"] = "newest",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Any:
    start, end = _when("since", since), _when("until", until)
    result = await queries(request).orders(
        OrderFilter(status, reason, org, card_type, start, end, order_id, sort == "newest", page)
    )
    return vars(result)


def _when(name: str, value: str | None) -> date | None:
    """A day, or a moment (a datetime; without an offset, Oslo's)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: not a date or an RFC 3339 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=OSLO)


@router.get("/orders/{order_id}", response_model=OrderDetailOut, responses={404: {}})
async def order(request: Request, _staff: Viewer, order_id: str) -> Any:
    view = await queries(request).order(order_id)
    if view is None:
        raise HTTPException(404, f"unknown order {order_id}")
    return {
        "order": view.order,
        "timeline": view.timeline,
        "checks": view.checks,
        "checks_revision": view.checks_revision,
        "card": view.card,
        "card_history": view.card_history,
        "commands": [{**c, "command_id": str(c["command_id"])} for c in view.commands],
        "overridable": view.overridable,
        "emails": view.emails,
    }


async def _sent(action: Any) -> Any:
    try:
        sent = await action
    except Refused as exc:
        raise HTTPException(409, str(exc)) from None
    return SentOut(command_id=sent.command_id, summary=sent.summary)


@router.post("/orders/{order_id}/override", response_model=SentOut, status_code=202)
async def override(request: Request, staff: Operator, order_id: str, body: OverrideIn) -> Any:
    return await _sent(commands(request).override(staff, order_id, body.check, body.reason))


@router.post("/orders/{order_id}/replay", response_model=SentOut, status_code=202)
async def replay(request: Request, staff: Operator, order_id: str, body: ReplayIn) -> Any:
    if body.lift_replay_limit and not staff.may("supervisor"):
        raise Forbidden("supervisor")
    return await _sent(
        commands(request).replay(staff, order_id, body.reason, body.lift_replay_limit)
    )


@router.post("/orders/{order_id}/cancel", response_model=SentOut, status_code=202)
async def cancel(request: Request, staff: Operator, order_id: str, body: CancelIn) -> Any:
    return await _sent(commands(request).cancel(staff, order_id, body.reason))


@router.post("/orders/{order_id}/card/report-lost", response_model=SentOut, status_code=202)
async def report_lost(request: Request, staff: Operator, order_id: str, body: ReportLostIn) -> Any:
    return await _sent(
        commands(request).report_lost(
            staff, order_id, body.card_number, body.reason, body.replacement
        )
    )


@router.post("/orders/{order_id}/card/end-employment", response_model=SentOut, status_code=202)
async def end_employment(
    request: Request, staff: Operator, order_id: str, body: EndEmploymentIn
) -> Any:
    return await _sent(
        commands(request).end_employment(
            staff, order_id, body.card_number, body.reason, body.end_date
        )
    )


@router.post("/orders/{order_id}/card/suspend", response_model=SentOut, status_code=202)
async def suspend_card(
    request: Request, staff: Operator, order_id: str, body: CardCommandIn
) -> Any:
    return await _sent(
        commands(request).suspend_card(staff, order_id, body.card_number, body.reason)
    )


@router.post("/orders/{order_id}/card/reinstate", response_model=SentOut, status_code=202)
async def reinstate_card(
    request: Request, staff: Operator, order_id: str, body: CardCommandIn
) -> Any:
    return await _sent(
        commands(request).reinstate_card(staff, order_id, body.card_number, body.reason)
    )


@router.get("/audit", response_model=list[AuditOut])
async def audit(
    request: Request,
    _staff: Viewer,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    return await queries(request).audit(actor, action, order_id)


async def funnel_report(request: Request, month: str | None) -> FunnelReport:
    """The month asked for (YYYY-MM, Oslo time; this month when none), or 422 saying why."""
    try:
        wanted = Month.asked(month, datetime.now(UTC))
    except BadMonth as exc:
        raise HTTPException(422, str(exc)) from None
    return await queries(request).funnel_report(wanted)


@router.get(
    "/reports/funnel",
    response_model=FunnelReportOut,
    responses={200: {"content": {"text/csv": {}}}, 422: {}},
)
async def funnel(
    request: Request,
    _staff: Viewer,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM, Oslo time")] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Ordered, produced, lead times and where the rest went, per card type (JSON or CSV)."""
    report = await funnel_report(request, month)
    if format == "csv":
        return csv_response(
            report.CSV_COLUMNS, report.csv_rows(), f"kortflyt-funnel-{report.month}.csv"
        )
    return report.as_json()

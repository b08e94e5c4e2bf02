"""The console's action pages beyond one order: bulk replay by filter (supervisors), the
replay limit of one order (supervisors lift it), and the dead letters (operators re-drive
one, supervisors a filtered set). Plain forms; the bulk job page refreshes itself with a
small script served by the app (static/progress.js), and without it by its link."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from services.support.web.auth import Staff
from services.support.web.bulk import Refused as BulkRefused
from services.support.web.commands import Refused
from services.support.web.deps import Operator, Supervisor, Viewer, bulk, commands, queries
from services.support.web.pages import _act as act_on_order
from services.support.web.queries import DeadLetterFilter, OrderFilter
from services.support.web.reference import STATUSES, reason_codes
from services.support.web.render import templates
from shared.events import Status
from shared.topics import SERVICES

router = APIRouter(include_in_schema=False)

Text = Annotated[str | None, Query(max_length=64)]


def _page(request: Request, name: str, staff: Staff, context: dict[str, Any]) -> Response:
    status_code = context.pop("status_code", 200)
    return templates.TemplateResponse(
        request, name, {"staff": staff, **context}, status_code=status_code
    )


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def order_filter(
    status: str | None,
    reason: str | None,
    org: str | None,
    card_type: str | None,
    since: str | None,
    until: str | None,
) -> tuple[OrderFilter, dict[str, str]]:
    """The orders filter as a form sends it (empty fields are no filter), and the fields
    that filter (to show and to keep with a job)."""
    try:
        parsed_status = Status(status) if status else None
    except ValueError:
        parsed_status = None
    f = OrderFilter(
        status=parsed_status,
        reason=reason or None,
        org_number=org or None,
        card_type=card_type if card_type in ("construction", "cleaning") else None,  # type: ignore[arg-type]
        since=_day(since),
        until=_day(until),
    )
    params = {
        "status": f.status.value if f.status else "",
        "reason": f.reason or "",
        "org": f.org_number or "",
        "card_type": f.card_type or "",
        "since": f.since.isoformat() if f.since else "",
        "until": f.until.isoformat() if f.until else "",
    }
    return f, {k: v for k, v in params.items() if v}


# --------------------------------------------------------------------------- bulk replay


@router.get("/bulk-replay")
async def bulk_replay(
    request: Request,
    staff: Supervisor,
    status: Text = None,
    reason: Text = None,
    org: Annotated[str | None, Query(max_length=9)] = None,
    card_type: Text = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    dry_run: Annotated[str | None, Query(max_length=1)] = None,
) -> Response:
    f, params = order_filter(status, reason, org, card_type, since, until)
    plan = await bulk(request).dry_run(f) if dry_run else None
    return _page(
        request,
        "bulk.html",
        staff,
        {
            "f": params,
            "plan": plan,
            "statuses": STATUSES,
            "reason_codes": reason_codes(),
            "jobs": await bulk(request).jobs(),
            "active": "bulk",
        },
    )


@router.post("/bulk-replay")
async def start_bulk_replay(
    request: Request,
    staff: Supervisor,
    confirm: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
    status: Annotated[str, Form(max_length=64)] = "",
    reason_code: Annotated[str, Form(max_length=64)] = "",
    org: Annotated[str, Form(max_length=9)] = "",
    card_type: Annotated[str, Form(max_length=64)] = "",
    since: Annotated[str, Form(max_length=10)] = "",
    until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    f, params = order_filter(status, reason_code, org, card_type, since, until)
    try:
        job_id = await bulk(request).start(staff, f, params, confirm, reason.strip() or None)
    except BulkRefused as exc:
        return _page(
            request,
            "bulk.html",
            staff,
            {
                "f": params,
                "plan": await bulk(request).dry_run(f),
                "statuses": STATUSES,
                "reason_codes": reason_codes(),
                "jobs": await bulk(request).jobs(),
                "error": str(exc),
                "active": "bulk",
                "status_code": 409,
            },
        )
    return RedirectResponse(f"/bulk-replay/{job_id}", 303)


@router.get("/bulk-replay/{job_id}")
async def bulk_job(request: Request, staff: Supervisor, job_id: uuid.UUID) -> Response:
    progress = await bulk(request).progress(job_id)
    if progress is None:
        return _page(request, "missing.html", staff, {"what": str(job_id), "status_code": 404})
    return _page(request, "bulk_job.html", staff, {"p": progress, "active": "bulk"})


# --------------------------------------------------------------------------- replay limit


@router.post("/orders/{order_id}/replay-past-limit")
async def replay_past_limit(
    request: Request,
    staff: Supervisor,
    order_id: str,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    action = commands(request).replay(staff, order_id, reason, lift_replay_limit=True)
    return await act_on_order(request, staff, order_id, action)


# --------------------------------------------------------------------------- dead letters


def dead_letter_filter(
    service: str | None, reason: str | None, since: str | None, until: str | None, state: str | None
) -> tuple[DeadLetterFilter, dict[str, str]]:
    f = DeadLetterFilter(
        service=service if service in SERVICES else None,
        reason=reason or None,
        since=_day(since),
        until=_day(until),
        waiting_only=state == "waiting",
    )
    params = {
        "service": f.service or "",
        "reason": f.reason or "",
        "since": f.since.isoformat() if f.since else "",
        "until": f.until.isoformat() if f.until else "",
        "state": "waiting" if f.waiting_only else "",
    }
    return f, {k: v for k, v in params.items() if v}


async def _dead_letters_page(
    request: Request, staff: Staff, f: DeadLetterFilter, params: dict[str, str], **extra: Any
) -> Response:
    rows = await queries(request).dead_letters(f)
    waiting = await queries(request).dead_letters(
        DeadLetterFilter(f.service, f.reason, f.since, f.until, waiting_only=True)
    )
    return _page(
        request,
        "dead_letters.html",
        staff,
        {
            "rows": rows,
            "waiting": len(waiting),
            "f": params,
            "services": SERVICES,
            "reason_codes": reason_codes(),
            "active": "dead_letters",
            **extra,
        },
    )


@router.get("/dead-letters")
async def dead_letters(
    request: Request,
    staff: Viewer,
    service: Text = None,
    reason: Text = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    state: Text = None,
    sent: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    f, params = dead_letter_filter(service, reason, since, until, state)
    return await _dead_letters_page(request, staff, f, params, sent=sent)


@router.get("/dead-letters/{service}/{dead_letter_id}")
async def dead_letter(
    request: Request,
    staff: Viewer,
    service: str,
    dead_letter_id: int,
    sent: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    row = await queries(request).dead_letter(service, dead_letter_id)
    if row is None:
        what = f"{service}/{dead_letter_id}"
        return _page(request, "missing.html", staff, {"what": what, "status_code": 404})
    return _page(
        request,
        "dead_letter.html",
        staff,
        {"d": row, "sent": sent, "error": error, "active": "dead_letters"},
    )


@router.post("/dead-letters/{service}/{dead_letter_id}/redrive")
async def redrive(
    request: Request,
    staff: Operator,
    service: str,
    dead_letter_id: int,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    where = f"/dead-letters/{service}/{dead_letter_id}"
    try:
        sent = await commands(request).redrive(staff, service, dead_letter_id, reason)
    except Refused as exc:
        return RedirectResponse(f"{where}?" + urlencode({"error": str(exc)}), 303)
    return RedirectResponse(f"{where}?" + urlencode({"sent": sent.summary}), 303)


@router.post("/dead-letters/redrive")
async def redrive_many(
    request: Request,
    staff: Supervisor,
    confirm: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
    service: Annotated[str, Form(max_length=64)] = "",
    reason_code: Annotated[str, Form(max_length=64)] = "",
    since: Annotated[str, Form(max_length=10)] = "",
    until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    f, params = dead_letter_filter(service, reason_code, since, until, None)
    try:
        count = await commands(request).redrive_many(staff, f, confirm, reason)
    except Refused as exc:
        return await _dead_letters_page(request, staff, f, params, error=str(exc), status_code=409)
    sent = f"{count} re-drive commands"
    return RedirectResponse("/dead-letters?" + urlencode({**params, "sent": sent}), 303)

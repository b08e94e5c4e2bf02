"""The console's pages: each reads the request, calls a query or a command, renders."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from services.support.funnel import CARD_STATUSES, BadMonth, Month
from services.support.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Accounts,
    CsrfRejected,
    Staff,
    session_token,
)
from services.support.web.charts import ROW_LABEL, funnel_chart, not_produced_chart
from services.support.web.commands import Refused
from services.support.web.deps import Operator, Viewer, commands, queries
from services.support.web.oidc import OidcClient, OidcRefused
from services.support.web.queries import OrderFilter
from services.support.web.reference import STATUSES, reason_codes
from services.support.web.render import templates
from shared.events import CARD_STATUS_LABEL, Status

router = APIRouter(include_in_schema=False)
COOKIE = {"httponly": True, "secure": True, "samesite": "strict", "path": "/"}
# The OpenID Connect state travels with the browser to the issuer and back: the way back
# is a navigation from the issuer's site, which a SameSite=Strict cookie would miss.
OIDC_STATE_COOKIE = "kortflyt_oidc_state"
OIDC_COOKIE = {"httponly": True, "secure": True, "samesite": "lax", "path": "/login/oidc"}


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no //host): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# --------------------------------------------------------------------------- sign-in


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"next": _safe_next(next), "login_csrf": token, "problem": None, "oidc": _oidc(request)},
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **COOKIE)  # type: ignore[arg-type]
    return response


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    login_csrf: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, login_csrf):
        raise CsrfRejected
    accounts: Accounts = request.app.state.accounts
    client = request.client.host if request.client else "-"
    result = await accounts.login(username.strip(), password, f"console from {client}")
    if result.token is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {
                "next": _safe_next(next),
                "login_csrf": cookie,
                "problem": result.problem,
                "oidc": _oidc(request),
            },
            status_code=401,
        )
    response = RedirectResponse(_safe_next(next), 303)
    response.set_cookie(SESSION_COOKIE, result.token, **COOKIE)  # type: ignore[arg-type]
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def _oidc(request: Request) -> OidcClient | None:
    oidc: OidcClient | None = request.app.state.oidc
    return oidc


@router.get("/login/oidc")
async def oidc_login(request: Request, next: str | None = None) -> Response:
    """Off to the issuer: state, nonce and PKCE verifier kept here, the state also in the
    browser (a cookie), so the callback can tell it is this browser's sign-in."""
    oidc = _oidc(request)
    if oidc is None:
        return templates.TemplateResponse(request, "not_found.html", {}, status_code=404)
    try:
        started = await oidc.begin()
    except OidcRefused as exc:
        return await _oidc_refused(request, exc)
    accounts: Accounts = request.app.state.accounts
    await accounts.oidc_started(
        started.state, started.nonce, started.code_verifier, _safe_next(next)
    )
    response = RedirectResponse(started.url, 303)
    response.set_cookie(OIDC_STATE_COOKIE, started.state, max_age=600, **OIDC_COOKIE)  # type: ignore[arg-type]
    return response


@router.get("/login/oidc/callback")
async def oidc_callback(
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=2000)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Back from the issuer: the state must be this browser's and unused; the code is
    exchanged and the id token checked (oidc.py); then a session like a local one."""
    oidc = _oidc(request)
    if oidc is None:
        return templates.TemplateResponse(request, "not_found.html", {}, status_code=404)
    accounts: Accounts = request.app.state.accounts
    client = request.client.host if request.client else "-"
    source = f"oidc from {client}"
    actor = "-"  # who, once the id token says
    try:
        cookie = request.cookies.get(OIDC_STATE_COOKIE, "")
        if not state or not cookie or not secrets.compare_digest(cookie, state):
            raise OidcRefused("state", "the state is not this browser's")
        pending = await accounts.oidc_returned(state)
        if pending is None:
            raise OidcRefused("state", "unknown, used or expired state")
        if error is not None or not code:
            raise OidcRefused("provider", f"the issuer answered {error or 'no code'}")
        who = await oidc.finish(code, pending["code_verifier"], pending["nonce"])
        actor = who.name
        session = await accounts.oidc_login(who.subject, who.name, who.role, source)
        if session is None:
            raise OidcRefused("name", "the user name belongs to another account")
    except OidcRefused as exc:
        await accounts.refused(actor, source, f"{exc.problem}: {exc}")
        return await _oidc_refused(request, exc)
    token, _staff = session
    # A page that moves on by itself rather than a redirect: the way here started on the
    # issuer's site, and the browser would not send the SameSite=Strict session cookie
    # along a redirect chain that did.
    target = pending["next_path"]
    response = templates.TemplateResponse(request, "signed_in.html", {"next": target})
    response.set_cookie(SESSION_COOKIE, token, **COOKIE)  # type: ignore[arg-type]
    response.delete_cookie(OIDC_STATE_COOKIE, path="/login/oidc", secure=True, httponly=True)
    return response


async def _oidc_refused(request: Request, exc: OidcRefused) -> Response:
    status = {"role": 403, "name": 403, "unavailable": 503}.get(exc.problem, 400)
    response = templates.TemplateResponse(
        request, "oidc_refused.html", {"problem": exc.problem}, status_code=status
    )
    response.delete_cookie(OIDC_STATE_COOKIE, path="/login/oidc", secure=True, httponly=True)
    return response


@router.post("/logout")
async def logout(request: Request, staff: Viewer) -> Response:
    found = session_token(request)
    if found:
        accounts: Accounts = request.app.state.accounts
        await accounts.logout(found[0], staff.name)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


# --------------------------------------------------------------------------- pages


def _page(request: Request, name: str, staff: Staff, context: dict[str, Any]) -> Response:
    status_code = context.pop("status_code", 200)
    return templates.TemplateResponse(
        request, name, {"staff": staff, **context}, status_code=status_code
    )


@router.get("/")
async def overview(request: Request, staff: Viewer) -> Response:
    data = await queries(request).overview()
    return _page(request, "overview.html", staff, {"o": data, "statuses": STATUSES})


def _status(value: str | None) -> Status | None:
    try:
        return Status(value) if value else None
    except ValueError:
        return None


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/orders")
async def orders(
    request: Request,
    staff: Viewer,
    # A form sends every field, empty ones as "": read as text, an empty one is no filter.
    status: Annotated[str | None, Query(max_length=40)] = None,
    reason: Annotated[str | None, Query(max_length=60)] = None,
    org: Annotated[str | None, Query(max_length=9)] = None,
    card_type: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[str, Query(pattern="^(newest|oldest)$")] = "newest",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    f = OrderFilter(
        status=_status(status),
        reason=reason or None,
        org_number=org or None,
        card_type=card_type if card_type in ("construction", "cleaning") else None,  # type: ignore[arg-type]
        since=_day(since),
        until=_day(until),
        order_id=(order_id or "").strip() or None,
        newest_first=sort == "newest",
        page=page,
    )
    result = await queries(request).orders(f)
    params = {
        k: v
        for k, v in {
            "status": f.status.value if f.status else None,
            "reason": reason,
            "org": org,
            "card_type": f.card_type,
            "since": f.since.isoformat() if f.since else None,
            "until": f.until.isoformat() if f.until else None,
            "order_id": order_id,
            "sort": sort,
        }.items()
        if v
    }

    def link(p: int) -> str:
        return "/orders?" + urlencode({**params, "page": p})

    return _page(
        request,
        "orders.html",
        staff,
        {
            "result": result,
            "f": params,
            "statuses": STATUSES,
            "reason_codes": reason_codes(),
            "prev_url": link(result.page - 1) if result.page > 1 else None,
            "next_url": link(result.page + 1) if result.page < result.pages else None,
        },
    )


async def _order_page(
    request: Request, staff: Staff, order_id: str, extra: dict[str, Any] | None = None
) -> Response:
    view = await queries(request).order(order_id)
    if view is None:
        return _page(request, "not_found.html", staff, {"order_id": order_id, "status_code": 404})
    return _page(request, "order.html", staff, {"v": view, **(extra or {})})


@router.get("/orders/{order_id}")
async def order(
    request: Request, staff: Viewer, order_id: str, sent: str | None = None
) -> Response:
    return await _order_page(request, staff, order_id, {"sent": sent})


async def _act(request: Request, staff: Staff, order_id: str, action: Any) -> Response:
    try:
        sent = await action
    except Refused as exc:
        return await _order_page(request, staff, order_id, {"error": str(exc), "status_code": 409})
    return RedirectResponse(
        f"/orders/{order_id}?" + urlencode({"sent": sent.summary}), status_code=303
    )


@router.post("/orders/{order_id}/override")
async def override(
    request: Request,
    staff: Operator,
    order_id: str,
    check: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return await _act(
        request, staff, order_id, commands(request).override(staff, order_id, check, reason)
    )


@router.post("/orders/{order_id}/replay")
async def replay(
    request: Request,
    staff: Operator,
    order_id: str,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return await _act(request, staff, order_id, commands(request).replay(staff, order_id, reason))


@router.post("/orders/{order_id}/cancel")
async def cancel(
    request: Request,
    staff: Operator,
    order_id: str,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return await _act(request, staff, order_id, commands(request).cancel(staff, order_id, reason))


@router.get("/reports/funnel")
async def funnel_report(
    request: Request,
    staff: Viewer,
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    try:
        wanted = Month.asked(month, datetime.now(UTC))
    except BadMonth as exc:
        return _page(
            request,
            "funnel.html",
            staff,
            {"report": None, "error": str(exc), "month": month, "status_code": 422},
        )
    report = await queries(request).funnel_report(wanted)
    download = "/api/v1/reports/funnel?" + urlencode({"month": str(wanted)})
    return _page(
        request,
        "funnel.html",
        staff,
        {
            "report": report,
            "month": str(wanted),
            "chart": funnel_chart(report),
            "rest_chart": not_produced_chart(report),
            "row_label": ROW_LABEL,
            "card_statuses": CARD_STATUSES,
            "card_status_label": CARD_STATUS_LABEL,
            "previous": str(wanted.previous()),
            "next": str(wanted.next()),
            "json_url": download,
            "csv_url": download + "&format=csv",
        },
    )


# The card's actions (production handles them): forms on the order page's card panel.


@router.post("/orders/{order_id}/card/report-lost")
async def report_lost(
    request: Request,
    staff: Operator,
    order_id: str,
    card_number: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=200)] = "",
    replacement: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    action = commands(request).report_lost(
        staff, order_id, card_number, reason, replacement == "yes"
    )
    return await _act(request, staff, order_id, action)


@router.post("/orders/{order_id}/card/end-employment")
async def end_employment(
    request: Request,
    staff: Operator,
    order_id: str,
    card_number: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=200)] = "",
    end_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    day = _day(end_date)
    action = commands(request).end_employment(staff, order_id, card_number, reason, day)
    return await _act(request, staff, order_id, action)


@router.post("/orders/{order_id}/card/suspend")
async def suspend_card(
    request: Request,
    staff: Operator,
    order_id: str,
    card_number: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    action = commands(request).suspend_card(staff, order_id, card_number, reason)
    return await _act(request, staff, order_id, action)


@router.post("/orders/{order_id}/card/reinstate")
async def reinstate_card(
    request: Request,
    staff: Operator,
    order_id: str,
    card_number: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    action = commands(request).reinstate_card(staff, order_id, card_number, reason)
    return await _act(request, staff, order_id, action)


@router.get("/audit")
async def audit_log(
    request: Request,
    staff: Viewer,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    rows = await queries(request).audit(actor, action, order_id)
    params = {
        k: v for k, v in {"actor": actor, "action": action, "order_id": order_id}.items() if v
    }
    return _page(
        request,
        "audit.html",
        staff,
        {"rows": rows, "f": params, "csv_url": "/audit.csv?" + urlencode(params)},
    )


@router.get("/audit.csv")
async def audit_csv(
    request: Request,
    staff: Viewer,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    rows = await queries(request).audit(actor, action, order_id, limit=100_000)
    out = io.StringIO()
    columns = ["at", "service", "actor", "action", "order_id", "command_id", "reason", "detail"]
    writer = csv.writer(out)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_csv_cell(r[c]) for c in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="kortflyt-audit.csv"'},
    )


def _csv_cell(value: object) -> str:
    """A cell no spreadsheet runs as a formula (CSV injection)."""
    text = "" if value is None else value.isoformat() if isinstance(value, date) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

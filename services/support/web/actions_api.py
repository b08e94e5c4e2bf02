"""The API of the console's actions beyond one order (see actions.py for the pages):
bulk replay by filter, replay past the limit, dead letters and their re-drive. Same
sign-in and roles as the rest of /api/v1/."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field, JsonValue

from services.support.web.actions import dead_letter_filter
from services.support.web.api import SentOut
from services.support.web.bulk import Refused as BulkRefused
from services.support.web.commands import Refused
from services.support.web.deps import Operator, Supervisor, Viewer, bulk, commands, queries
from services.support.web.queries import DeadLetterFilter, OrderFilter
from shared.events import Status
from shared.logging import mask_national_ids

router = APIRouter(tags=["support actions"])


class OrderFilterIn(BaseModel):
    status: Status | None = None
    reason: str | None = Field(default=None, max_length=60)
    org: str | None = Field(default=None, max_length=9)
    card_type: Literal["construction", "cleaning"] | None = None
    since: date | None = None
    until: date | None = None

    def order_filter(self) -> OrderFilter:
        return OrderFilter(
            self.status, self.reason, self.org, self.card_type, self.since, self.until
        )

    def params(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(mode="json").items() if v}


class DryRunOut(BaseModel):
    matched: int
    replayable: int
    by_reason: dict[str, int]
    skipped: dict[str, int]
    confirmation: str = Field(description="what `confirm` must be to start the job")


class BulkReplayIn(BaseModel):
    filter: OrderFilterIn
    confirm: str = Field(max_length=12, description="the count the dry run showed")
    note: str | None = Field(default=None, max_length=200, description="why (audited)")


class JobOut(BaseModel):
    job_id: uuid.UUID
    actor: str
    reason: str | None
    filter: dict[str, str]
    total: int
    rate: float
    created_at: datetime
    finished_at: datetime | None
    state: Literal["sending", "sent", "answered"]
    sent: int
    done: int
    skipped: int
    refused: int
    waiting: int
    refusals: dict[str, int]


class DeadLetterOut(BaseModel):
    service: str
    dead_letter_id: int
    origin_topic: str
    delivered_on: str
    kafka_partition: int
    kafka_offset: int
    attempt: int
    error: JsonValue
    reasons: list[str]
    order_id: str | None
    failed_at: datetime
    sha256: str
    size: int
    state: Literal["waiting", "redriving", "redriven"]
    last_outcome: str | None
    payload: str | None = Field(
        default=None,
        description="redacted start of the bytes, national ids masked; operators and up only",
    )


class RedriveIn(BaseModel):
    reason: str | None = Field(default=None, max_length=200)


class RedriveManyIn(RedriveIn):
    service: str | None = Field(default=None, max_length=40)
    reason_code: str | None = Field(default=None, max_length=60)
    since: date | None = None
    until: date | None = None
    confirm: str = Field(max_length=12, description="the number of dead letters waiting")


class RedrivenOut(BaseModel):
    sent: int


class LiftIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


def _job(p: Any) -> dict[str, Any]:
    return {**vars(p), "state": p.state, "refusals": dict(p.refusals)}


@router.get("/bulk-replays/dry-run", response_model=DryRunOut)
async def bulk_dry_run(
    request: Request, _staff: Supervisor, f: Annotated[OrderFilterIn, Query()]
) -> Any:
    plan = await bulk(request).dry_run(f.order_filter())
    return {**vars(plan), "by_reason": dict(plan.by_reason), "confirmation": str(plan.replayable)}


@router.post("/bulk-replays", response_model=JobOut, status_code=202, responses={409: {}})
async def bulk_start(request: Request, staff: Supervisor, body: BulkReplayIn) -> Any:
    try:
        f = body.filter
        job_id = await bulk(request).start(
            staff, f.order_filter(), f.params(), body.confirm, body.note
        )
    except BulkRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return _job(await bulk(request).progress(job_id))


@router.get("/bulk-replays", response_model=list[JobOut])
async def bulk_jobs(request: Request, _staff: Supervisor) -> Any:
    return [_job(p) for p in await bulk(request).jobs()]


@router.get("/bulk-replays/{job_id}", response_model=JobOut, responses={404: {}})
async def bulk_job(request: Request, _staff: Supervisor, job_id: uuid.UUID) -> Any:
    progress = await bulk(request).progress(job_id)
    if progress is None:
        raise HTTPException(404, f"unknown job {job_id}")
    return _job(progress)


@router.post("/orders/{order_id}/replay-past-limit", response_model=SentOut, status_code=202)
async def replay_past_limit(
    request: Request, staff: Supervisor, order_id: str, body: LiftIn
) -> Any:
    try:
        sent = await commands(request).replay(staff, order_id, body.reason, lift_replay_limit=True)
    except Refused as exc:
        raise HTTPException(409, str(exc)) from None
    return SentOut(command_id=sent.command_id, summary=sent.summary)


def _dead(row: dict[str, Any], may_see_payload: bool) -> dict[str, Any]:
    shown = may_see_payload and row["preview"] is not None
    return {**row, "payload": mask_national_ids(row["preview"]) if shown else None}


@router.get("/dead-letters", response_model=list[DeadLetterOut])
async def dead_letters(
    request: Request,
    staff: Viewer,
    service: Annotated[str | None, Query(max_length=40)] = None,
    reason: Annotated[str | None, Query(max_length=60)] = None,
    since: date | None = None,
    until: date | None = None,
    state: Literal["waiting"] | None = None,
) -> Any:
    f = DeadLetterFilter(service, reason, since, until, waiting_only=state == "waiting")
    rows = await queries(request).dead_letters(f)
    return [_dead(r, staff.may("operator")) for r in rows]


@router.get(
    "/dead-letters/{service}/{dead_letter_id}", response_model=DeadLetterOut, responses={404: {}}
)
async def dead_letter(request: Request, staff: Viewer, service: str, dead_letter_id: int) -> Any:
    row = await queries(request).dead_letter(service, dead_letter_id)
    if row is None:
        raise HTTPException(404, f"unknown dead letter {service}/{dead_letter_id}")
    return _dead(row, staff.may("operator"))


@router.post(
    "/dead-letters/{service}/{dead_letter_id}/redrive", response_model=SentOut, status_code=202
)
async def redrive(
    request: Request, staff: Operator, service: str, dead_letter_id: int, body: RedriveIn
) -> Any:
    try:
        sent = await commands(request).redrive(staff, service, dead_letter_id, body.reason)
    except Refused as exc:
        raise HTTPException(409, str(exc)) from None
    return SentOut(command_id=sent.command_id, summary=sent.summary)


@router.post("/dead-letters/redrive", response_model=RedrivenOut, status_code=202)
async def redrive_many(request: Request, staff: Supervisor, body: RedriveManyIn) -> Any:
    f, _ = dead_letter_filter(
        body.service,
        body.reason_code,
        body.since.isoformat() if body.since else None,
        body.until.isoformat() if body.until else None,
        None,
    )
    try:
        count = await commands(request).redrive_many(staff, f, body.confirm, body.reason)
    except Refused as exc:
        raise HTTPException(409, str(exc)) from None
    return RedrivenOut(sent=count)

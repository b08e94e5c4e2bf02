"""What every console route and API call depends on, declared once for both routers: the
role it needs, and the app's query and command services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.support.web.auth import Staff, require_role
from services.support.web.bulk import BulkReplays
from services.support.web.commands import ConsoleCommands
from services.support.web.queries import Queries

Viewer = Annotated[Staff, Depends(require_role("viewer"))]
Operator = Annotated[Staff, Depends(require_role("operator"))]
Supervisor = Annotated[Staff, Depends(require_role("supervisor"))]


def queries(request: Request) -> Queries:
    q: Queries = request.app.state.queries
    return q


def commands(request: Request) -> ConsoleCommands:
    c: ConsoleCommands = request.app.state.commands
    return c


def bulk(request: Request) -> BulkReplays:
    b: BulkReplays = request.app.state.bulk
    return b

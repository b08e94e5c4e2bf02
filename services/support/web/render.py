"""The console's templates (Jinja2, autoescaped) and their filters."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates

from shared.logging import mask_national_ids
from shared.norway import OSLO

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def oslo_time(value: datetime | None) -> str:
    """A moment as Oslo wall-clock time (what the staff's clocks say)."""
    return value.astimezone(OSLO).strftime("%Y-%m-%d %H:%M:%S") if value else "\N{EN DASH}"


templates.env.filters["oslo"] = oslo_time
templates.env.filters["mask_ids"] = mask_national_ids

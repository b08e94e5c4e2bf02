"""The console's templates (Jinja2, autoescaped) and their filters."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from fastapi import Response
from fastapi.templating import Jinja2Templates

from shared.logging import mask_national_ids
from shared.norway import OSLO

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def oslo_time(value: datetime | None) -> str:
    """A moment as Oslo wall-clock time (what the staff's clocks say)."""
    return value.astimezone(OSLO).strftime("%Y-%m-%d %H:%M:%S") if value else "\N{EN DASH}"


templates.env.filters["oslo"] = oslo_time


def csv_response(columns: Sequence[str], rows: Iterable[Sequence[str]], filename: str) -> Response:
    """A CSV download (UTF-8, a header line first)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


templates.env.filters["mask_ids"] = mask_national_ids

"""Charts drawn on the server as SVG: no script, no library, nothing from elsewhere.

Each chart is an `<svg role="img">` named by its `<title>` and described by its `<desc>`
(the numbers in words), and the page shows the same numbers in a table beside it, so
a screen reader or a printout loses nothing. Colours are the console's (console.css);
every bar carries its number as text, so no colour alone tells anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from services.support.funnel import FunnelReport

ROW_LABEL = {
    "all": ("Alle", "All"),
    "construction": ("Bygg og anlegg", "Construction"),
    "cleaning": ("Renhold", "Cleaning"),
}
WIDTH = 760
LABEL_W = 300
BAR_W = 380
BAR_H = 18
INK, MUTED, ORDERED, PRODUCED, NOT_PRODUCED = "#1b1f24", "#4f5863", "#5b6b7a", "#176b35", "#a1262d"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    colour: str
    note: str = ""


def number(value: int) -> str:
    """27378 -> 27 378 (a narrow no-break space between thousands, as in Norwegian)."""
    return f"{value:,}".replace(",", "\u202f")


def _svg(ident: str, title: str, desc: str, height: int, body: list[str]) -> Markup:
    return Markup(  # noqa: S704 - every text below is escaped, the rest is numbers
        f'<svg class="chart" id="{ident}" role="img" viewBox="0 0 {WIDTH} {height}"'
        f' width="{WIDTH}" height="{height}" aria-labelledby="{ident}-title {ident}-desc"'
        ' xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


def _bars(groups: list[tuple[str, list[Bar]]], top: int) -> tuple[list[str], int]:
    """Horizontal bars, grouped under a label each, scaled to the largest value."""
    largest = max((b.value for _, bars in groups for b in bars), default=0) or 1
    body, y = [], top
    for label, bars in groups:
        if label:
            body.append(
                f'<text x="0" y="{y + BAR_H - 4}" fill="{INK}" font-size="14"'
                f' font-weight="600">{escape(label)}</text>'
            )
            y += BAR_H + 4
        for bar in bars:
            length = round(BAR_W * bar.value / largest) if bar.value else 0
            body.append(
                f'<rect x="{LABEL_W}" y="{y}" width="{max(length, 1)}" height="{BAR_H}"'
                f' fill="{bar.colour}"/>'
                f'<text x="{LABEL_W + length + 6}" y="{y + BAR_H - 4}" fill="{INK}"'
                f' font-size="13">{number(bar.value)}{escape(bar.note)}</text>'
            )
            if bar.label:
                body.append(
                    f'<text x="{LABEL_W - 8}" y="{y + BAR_H - 4}" fill="{MUTED}" font-size="12"'
                    f' text-anchor="end">{escape(bar.label)}</text>'
                )
            y += BAR_H + 4
        y += 14
    return body, y


def funnel_chart(report: FunnelReport) -> Markup:
    """Ordered and produced per card type (all first), with the share produced."""
    groups = []
    for row in report.rows:
        nb, en = ROW_LABEL[row.card_type]
        share = f" ({row.share_produced * 100:.1f} %)" if row.ordered else ""
        groups.append(
            (
                f"{nb} / {en}",
                [
                    Bar("Bestilt / Ordered", row.ordered, ORDERED),
                    Bar("Produsert / Produced", row.produced, PRODUCED, share),
                ],
            )
        )
    body, height = _bars(groups, 8)
    desc = "; ".join(
        f"{ROW_LABEL[r.card_type][1]}: {r.ordered} ordered, {r.produced} produced"
        + (f" ({r.share_produced * 100:.1f} %)" if r.ordered else "")
        for r in report.rows
    )
    return _svg(
        "funnel-chart",
        f"Bestilt og produsert {report.month} / Ordered and produced {report.month}",
        desc,
        height,
        body,
    )


def not_produced_chart(report: FunnelReport, limit: int = 12) -> Markup:
    """The orders of the month not produced, by status and reason code (the largest first)."""
    rest = report.total.not_produced
    shown = rest[:limit]
    bars = [Bar(f"{n.status} · {n.reason_code or '-'}", n.count, NOT_PRODUCED) for n in shown]
    body, height = _bars([("", bars)] if bars else [], 8)
    others = sum(n.count for n in rest[limit:])
    desc = "; ".join(f"{n.status} {n.reason_code or ''}: {n.count}" for n in shown) or (
        "no order of the month is without a card"
    )
    if others:
        desc += f"; {others} more in other groups (see the table)"
    return _svg(
        "not-produced-chart",
        f"Ikke produsert {report.month}, etter status og årsak"
        f" / Not produced {report.month}, by status and reason",
        desc,
        max(height, 30),
        body,
    )

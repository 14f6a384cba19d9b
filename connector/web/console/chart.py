"""A small bar chart of calls per day, drawn on the server as SVG (no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

__all__ = ["calls_per_day_svg"]

_WIDTH = 560
_HEIGHT = 160
_BOTTOM = 24


def calls_per_day_svg(days: Sequence[tuple[datetime, int]], title: str, timezone: str) -> str:
    """An accessible SVG bar chart: one bar per day, labelled with the day and the count."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    peak = max((n for _, n in days), default=0) or 1
    slot = _WIDTH / max(len(days), 1)
    bars: list[str] = []
    for index, (day, count) in enumerate(days):
        height = (_HEIGHT - _BOTTOM - 16) * count / peak
        x = index * slot + slot * 0.15
        y = _HEIGHT - _BOTTOM - height
        label = day.astimezone(zone).strftime("%d.%m.")
        bars.append(
            f"<g><title>{escape(label)}: {count}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
            f'class="bar"/>'
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" class="count">{count}</text>'
            f'<text x="{x + slot * 0.35:.1f}" y="{_HEIGHT - 8}" class="day">{escape(label)}</text>'
            "</g>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" class="chart">{"".join(bars)}</svg>'
    )

"""Small server-rendered SVG charts for the supervisor page: horizontal bars
with their labels and values, an optional limit line (a cap, a threshold).

Pure functions of their data, returning markup Jinja inserts as is; every
label is escaped. No script, no stylesheet beyond the page's: a chart is
readable printed, in a screenshot and by a screen reader (``role="img"``,
a ``<title>`` and one ``<desc>`` line per bar).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

ROW = 26
LABEL_WIDTH = 170
VALUE_WIDTH = 110
PALETTE = {"normal": "#3b6ea8", "warn": "#c77c02", "alert": "#b3261e", "good": "#2e7d32", "muted": "#8a8f98"}


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | int | Decimal
    shown: str | None = None  # the value as text (default: the number)
    tone: str = "normal"  # a PALETTE key


def _number(value: float | int | Decimal) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def bar_chart(title: str, bars: Sequence[Bar], *, width: int = 560, limit: float | None = None,
              limit_label: str | None = None, empty: str = "nothing to show") -> Markup:
    """A horizontal bar chart as an SVG element; ``limit`` draws a dashed line at that value."""
    plot = width - LABEL_WIDTH - VALUE_WIDTH
    top = max([float(b.value) for b in bars] + [float(limit or 0), 1.0])
    height = max(len(bars), 1) * ROW + (22 if limit is not None else 8)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" '
             f'font-size="13"><title>{escape(title)}</title>']
    if not bars:
        parts.append(f'<text x="0" y="18" fill="{PALETTE["muted"]}">{escape(empty)}</text></svg>')
        return Markup("".join(parts))
    for i, bar in enumerate(bars):
        y = i * ROW
        length = 0 if top == 0 else max(float(bar.value) / top * plot, 0)
        shown = bar.shown if bar.shown is not None else _number(bar.value)
        colour = PALETTE.get(bar.tone, PALETTE["normal"])
        parts.append(
            f'<desc>{escape(bar.label)}: {escape(shown)}</desc>'
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{length:.1f}" height="{ROW - 8}" fill="{colour}" rx="2"/>'
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 17}">{escape(shown)}</text>')
    if limit is not None:
        x = LABEL_WIDTH + float(limit) / top * plot
        bottom = len(bars) * ROW
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{bottom + 4}" stroke="{PALETTE["alert"]}" '
                     f'stroke-dasharray="4 3"/>'
                     f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle" fill="{PALETTE["alert"]}">'
                     f'{escape(limit_label or _number(limit))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(title: str, part: Decimal, whole: Decimal, *, part_label: str, rest_label: str,
              width: int = 560) -> Markup:
    """One stacked bar: ``part`` of ``whole`` (recovered of what was due), with both figures under it."""
    share = float(part / whole) if whole > 0 else 0.0
    share = min(max(share, 0.0), 1.0)
    filled = share * width
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="48" '
             f'viewBox="0 0 {width} 48" font-family="system-ui, sans-serif" font-size="13">'
             f'<title>{escape(title)}</title><desc>{escape(part_label)}; {escape(rest_label)}</desc>',
             f'<rect x="0" y="2" width="{width}" height="20" fill="#e3e6ea" rx="2"/>',
             f'<rect x="0" y="2" width="{filled:.1f}" height="20" fill="{PALETTE["good"]}" rx="2"/>',
             f'<text x="0" y="40">{escape(part_label)}</text>',
             f'<text x="{width}" y="40" text-anchor="end" fill="{PALETTE["muted"]}">{escape(rest_label)}</text>',
             "</svg>"]
    return Markup("".join(parts))

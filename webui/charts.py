"""Bar charts as inline SVG, drawn on the server: no script, no external service, no
inline style (the colours are classes of the stylesheet, so the CSP holds)."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

ROW = 26  # height of one bar's row
LABEL = 140  # width of the label column
WIDTH = 640
VALUE = 90  # room for the number after the bar


@dataclass(frozen=True)
class Part:
    value: int
    kind: str  # a CSS class: "color", "mono", "duplex", …
    name: str  # what it is, for the tooltip and the legend


def bar_chart(
    title: str, bars: list[tuple[str, list[Part]]], legend: list[tuple[str, str]] | None = None
) -> Markup:
    """Horizontal stacked bars: one row per (label, parts), scaled to the largest total;
    the SVG's <title> and each bar's <title> say the numbers for screen readers."""
    if not bars:
        return Markup('<p class="muted">Nothing printed in this range.</p>')
    top = max(sum(p.value for p in parts) for _, parts in bars) or 1
    span = WIDTH - LABEL - VALUE
    height = ROW * len(bars) + (24 if legend else 4)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, parts) in enumerate(bars):
        y = i * ROW
        out.append(
            f'<text class="chart-label" x="{LABEL - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(_short(label))}</text>"
        )
        x = float(LABEL)
        for part in parts:
            if part.value <= 0:
                continue
            w = max(span * part.value / top, 1.0)
            out.append(
                f'<rect class="bar bar-{escape(part.kind)}" x="{x:.1f}" y="{y + 4}" '
                f'width="{w:.1f}" height="{ROW - 8}" rx="3">'
                f"<title>{escape(label)}: {part.value} {escape(part.name)}</title></rect>"
            )
            x += w
        total = sum(p.value for p in parts)
        out.append(f'<text class="chart-value" x="{x + 6:.1f}" y="{y + 17}">{total}</text>')
    if legend:
        y = ROW * len(bars) + 6
        x = LABEL
        for kind, name in legend:
            swatch = f'x="{x}" y="{y}" width="12" height="12" rx="2"'
            out.append(f'<rect class="bar bar-{escape(kind)}" {swatch}/>')
            out.append(
                f'<text class="chart-legend" x="{x + 16}" y="{y + 11}">{escape(name)}</text>'
            )
            x += 24 + 8 * len(name)
    out.append("</svg>")
    return Markup("".join(out))


def _short(label: str, most: int = 18) -> str:
    return label if len(label) <= most else label[: most - 1] + "…"

"""QR codes as inline SVG, made on the server (no script, no external service)."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, title: str = "QR code") -> Markup:
    svg = segno.make(text, error="m").svg_inline(
        scale=4, border=2, dark="#14213d", svgclass="qrcode", title=title, omitsize=True
    )
    return Markup(svg)

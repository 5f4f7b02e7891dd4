"""Certificates as PDF: A4 landscape, Chinese text in reportlab's built-in CJK font (STSong-Light,
a CID font every PDF reader has, so nothing is embedded and the text stays extractable)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
GOLD = HexColor("#b8860b")
INK = HexColor("#222222")


@cache
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


@dataclass(frozen=True)
class CertificateText:
    """What a certificate says, already in the reader's language."""

    heading: str  # 授权书 / 荣誉证书
    brand: str
    holder: str
    lines: Sequence[str]
    validity: str
    code_label: str
    code: str
    verify_hint: str
    issued: str


def render_certificate(text: CertificateText) -> bytes:
    """The certificate, one page."""
    font = _font()
    buffer = io.BytesIO()
    width, height = landscape(A4)
    page = canvas.Canvas(buffer, pagesize=(width, height), pageCompression=1)
    page.setTitle(f"{text.heading} {text.holder}")
    page.setAuthor(text.brand)
    page.setStrokeColor(GOLD)
    page.setLineWidth(6)
    page.rect(24, 24, width - 48, height - 48)
    page.setLineWidth(1.5)
    page.rect(36, 36, width - 72, height - 72)
    page.setFillColor(INK)
    page.setFont(font, 16)
    page.drawCentredString(width / 2, height - 90, text.brand)
    page.setFillColor(GOLD)
    page.setFont(font, 40)
    page.drawCentredString(width / 2, height - 150, text.heading)
    page.setFillColor(INK)
    page.setFont(font, 30)
    page.drawCentredString(width / 2, height - 215, text.holder)
    page.setFont(font, 16)
    y = height - 265
    for line in text.lines:
        page.drawCentredString(width / 2, y, line)
        y -= 28
    page.setFont(font, 13)
    page.drawCentredString(width / 2, y - 6, text.validity)
    page.drawCentredString(width / 2, y - 30, text.issued)
    page.setFont(font, 10)
    page.drawString(60, 70, f"{text.code_label}: {text.code}")
    page.drawString(60, 54, text.verify_hint)
    page.showPage()
    page.save()
    return buffer.getvalue()

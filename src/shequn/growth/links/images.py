"""A share link's QR code (PNG and SVG, by segno) and its poster (PNG, by Pillow, in a CJK
font that a package provides: nothing is fetched at run time)."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

from shequn.errors import Conflict

# Fonts with Chinese glyphs that Debian packages install (fonts-noto-cjk, fonts-wqy-microhei,
# fonts-wqy-zenhei, fonts-arphic-uming), for a deployment without the Python font package.
SYSTEM_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)

POSTER_SIZE = (750, 1200)
_BACKGROUND = (255, 248, 240)
_ACCENT = (196, 43, 28)
_INK = (40, 40, 40)
_MUTED = (120, 120, 120)


@cache
def cjk_font_path() -> str | None:
    """The CJK font posters are set in: Noto Sans SC from the `pylopdf-fonts-zh-cn` package,
    else the first system font found."""
    try:
        import pylopdf_fonts_zh_cn

        packaged = pylopdf_fonts_zh_cn.sans_path()
        if packaged.is_file():
            return str(packaged)
    except ImportError:
        pass
    return next((p for p in SYSTEM_CJK_FONTS if Path(p).is_file()), None)


def qr_png(url: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


def qr_svg(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, xmldecl=True)
    return out.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont:
    path = cjk_font_path()
    if path is None:
        raise Conflict("poster_font_missing")
    return ImageFont.truetype(path, size)


def _fitted(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> ImageFont.FreeTypeFont:
    """The font at `size`, smaller until `text` fits in `width` pixels."""
    font = _font(size)
    while size > 16 and draw.textlength(text, font=font) > width:
        size -= 2
        font = _font(size)
    return font


def _centred(
    draw: ImageDraw.ImageDraw,
    y: int,
    text: str,
    font: ImageFont.FreeTypeFont,
    fill: tuple[int, int, int],
) -> None:
    width = draw.textlength(text, font=font)
    draw.text(((POSTER_SIZE[0] - width) / 2, y), text, font=font, fill=fill)


def poster_png(*, url: str, title: str, sharer_line: str, call_to_action: str, brand: str) -> bytes:
    """A poster: the brand, the target's name, the link's QR code, who shares it and what to
    do with it."""
    width, height = POSTER_SIZE
    image = Image.new("RGB", POSTER_SIZE, _BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 150), fill=_ACCENT)
    _centred(draw, 45, brand, _fitted(draw, brand, 52, width - 80), (255, 255, 255))
    _centred(draw, 210, title, _fitted(draw, title, 56, width - 80), _INK)
    code = Image.open(io.BytesIO(qr_png(url, scale=12))).convert("RGB")
    side = 460
    code = code.resize((side, side), Image.Resampling.NEAREST)
    top = 330
    image.paste(code, ((width - side) // 2, top))
    _centred(draw, top + side + 50, sharer_line, _fitted(draw, sharer_line, 40, width - 80), _INK)
    _centred(draw, top + side + 120, call_to_action, _font(32), _MUTED)
    _centred(draw, height - 70, url, _fitted(draw, url, 24, width - 80), _MUTED)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()

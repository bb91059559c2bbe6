"""Pass images: the program's own, normalised to PNG, or a generated default.

Wallet refuses a pass without ``icon.png`` (it is what notifications show), and a merchant
who has not uploaded a logo still deserves a branded card, so the default is the merchant's
initials on the brand colour.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from wallet.cards import parse_hex_color

# Apple's sizes in points; @2x/@3x files hold 2x/3x the pixels.
ICON_SIZE = (29, 29)
LOGO_MAX_SIZE = (160, 50)

# A badge-shaped logo: square, the full height Wallet gives a logo.
_DEFAULT_LOGO_SIDE = 50


class InvalidImageError(ValueError):
    """Image bytes that Pillow cannot read as a picture."""


def initials(name: str, max_letters: int = 2) -> str:
    """Up to two initials of a name (``"Café Lux"`` -> ``"CL"``), ``"?"`` when it has none."""
    letters = [word[0] for word in name.split() if word[:1].isalnum()]
    return "".join(letters[:max_letters]).upper() or "?"


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _draw_initials(
    size: int, text: str, fill: tuple[int, int, int], ink: tuple[int, int, int], round_: bool
) -> Image.Image:
    # Drawn 4x larger then scaled down: Pillow draws shapes without anti-aliasing.
    big = size * 4
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if round_:
        draw.ellipse((0, 0, big - 1, big - 1), fill=(*fill, 255))
    else:
        draw.rectangle((0, 0, big, big), fill=(*fill, 255))
    font = ImageFont.load_default(size=int(big * (0.42 if len(text) > 1 else 0.55)))
    draw.text((big / 2, big / 2), text, font=font, fill=(*ink, 255), anchor="mm")
    return image.resize((size, size), Image.Resampling.LANCZOS)


def default_icon(name: str, background: str, foreground: str, scale: int = 1) -> bytes:
    """An opaque square icon: initials in ``foreground`` on ``background`` (hex colours)."""
    side = ICON_SIZE[0] * scale
    image = _draw_initials(
        side, initials(name), parse_hex_color(background), parse_hex_color(foreground), False
    )
    return _png(image.convert("RGB"))


def default_logo(name: str, background: str, foreground: str, scale: int = 1) -> bytes:
    """A round badge for the pass's logo slot.

    The pass itself is painted in the brand colour, so the badge is the foreground colour
    with the initials in the brand colour: it stays visible whatever the brand colour is.
    """
    side = _DEFAULT_LOGO_SIDE * scale
    image = _draw_initials(
        side, initials(name), parse_hex_color(foreground), parse_hex_color(background), True
    )
    return _png(image)


def fit_image(data: bytes, box: tuple[int, int], square_background: str | None = None) -> bytes:
    """The image ``data`` (any format Pillow reads) scaled to fit ``box``, as PNG.

    With ``square_background`` the result fills the box exactly, centred on that colour:
    icons must be opaque squares, logos may keep their own shape and transparency.
    """
    try:
        with Image.open(io.BytesIO(data)) as source:
            source.load()
            image = ImageOps.exif_transpose(source).convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(f"not a readable image: {exc}") from exc
    image = ImageOps.contain(image, box, Image.Resampling.LANCZOS)
    if square_background is None:
        return _png(image)
    canvas = Image.new("RGBA", box, (*parse_hex_color(square_background), 255))
    canvas.alpha_composite(image, ((box[0] - image.width) // 2, (box[1] - image.height) // 2))
    return _png(canvas.convert("RGB"))

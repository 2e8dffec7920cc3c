"""The seller's logo: what the renderer accepts (checked by decoding it, not by its name)."""

from __future__ import annotations

import base64
import binascii
import io

LOGO_MAX_BYTES = 256 * 1024
LOGO_MAX_PIXELS = 2000  # per side
LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}


class LogoProblem(ValueError):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def check_logo(data: bytes, declared: str | None = None) -> str:
    """The logo's MIME type, or LogoProblem: too big (bytes or pixels), unreadable, not PNG/JPEG,
    or not the type `declared`."""
    if len(data) > LOGO_MAX_BYTES:
        raise LogoProblem(
            "logo_too_large", f"{len(data)} bytes; at most {LOGO_MAX_BYTES} ({LOGO_MAX_BYTES // 1024} KiB)"
        )
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            detected, (width, height) = image.format, image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise LogoProblem("logo_unreadable", "the data is not a readable PNG or JPEG image") from None
    mime = LOGO_TYPES.get(detected or "")
    if mime is None or (declared is not None and mime != declared):
        raise LogoProblem(
            "logo_type", f"the data is {detected or 'unknown'}, not {declared or 'PNG or JPEG'}"
        )
    if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
        raise LogoProblem("logo_too_large", f"{width}x{height} px; at most {LOGO_MAX_PIXELS} px a side")
    return mime


def logo_from_data_uri(uri: str) -> tuple[bytes, str]:
    """(bytes, MIME type) of a `data:image/png;base64,...` (or jpeg) logo, or LogoProblem."""
    head, sep, payload = uri.partition(",")
    declared = head.removeprefix("data:").removesuffix(";base64")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise LogoProblem("logo_format", "send the logo as a data URI: data:image/png;base64,...")
    if declared not in LOGO_TYPES.values():
        raise LogoProblem(
            "logo_type", f"{declared or 'no type'} is not accepted; use image/png or image/jpeg"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise LogoProblem("logo_base64", "the data after the comma is not valid base64") from None
    return data, check_logo(data, declared)

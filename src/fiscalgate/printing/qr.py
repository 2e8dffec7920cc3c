"""QR codes drawn as vector squares from the stored content (segno), never fetched.

Sizing: a phone camera reads a code whose modules are at least ~0.5 mm at arm's length, surrounded by
the 4-module quiet zone ISO/IEC 18004 asks for. The renderer gives each layout a target side
(quiet zone included); the module never goes below MIN_MODULE_MM, so a long content makes a bigger
code rather than a denser one. Thermal receipt printers print 8 dots per mm (203 dpi): on receipts
the module is a whole number of dots, so every module prints the same width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import segno

QUIET_ZONE = 4  # modules, on every side (ISO/IEC 18004)
MIN_MODULE_MM = 0.5
THERMAL_DOT_MM = 0.125  # 203 dpi


@dataclass(frozen=True)
class QrGeometry:
    modules: int  # per side, without the quiet zone
    module_mm: float

    @property
    def side_mm(self) -> float:
        """The whole square, quiet zone included."""
        return (self.modules + 2 * QUIET_ZONE) * self.module_mm


def make(content: str) -> segno.QRCode:
    # Level M (15 % recovery): survives a crease or a smudge on paper without growing the code much.
    return segno.make(content, error="m", micro=False, boost_error=False)


def geometry(code: segno.QRCode, target_side_mm: float, *, thermal: bool) -> QrGeometry:
    modules = code.symbol_size(border=0)[0]
    module = max(MIN_MODULE_MM, target_side_mm / (modules + 2 * QUIET_ZONE))
    if thermal:
        dots = max(math.ceil(MIN_MODULE_MM / THERMAL_DOT_MM), math.floor(module / THERMAL_DOT_MM))
        module = dots * THERMAL_DOT_MM
    return QrGeometry(int(modules), module)


def draw(pdf: Any, code: segno.QRCode, x: float, y: float, geo: QrGeometry) -> None:
    """Draw the code with its top-left quiet-zone corner at (x, y): white square, then the dark
    modules, merged into horizontal runs (fewer PDF operators than one square per module)."""
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, geo.side_mm, geo.side_mm, style="F")
    pdf.set_fill_color(0, 0, 0)
    m = geo.module_mm
    origin_x, origin_y = x + QUIET_ZONE * m, y + QUIET_ZONE * m
    for row_index, row in enumerate(code.matrix):
        col = 0
        width = len(row)
        while col < width:
            if not row[col]:
                col += 1
                continue
            start = col
            while col < width and row[col]:
                col += 1
            pdf.rect(origin_x + start * m, origin_y + row_index * m, (col - start) * m, m, style="F")

"""Bounds on what one report may ask for, so that hostile or broken input fails
quickly with a clear message instead of exhausting time or memory."""

from __future__ import annotations

from pathlib import Path

MAX_CHAPTER_BYTES = 4 * 1024 * 1024
MAX_NESTING = 16  # lists and block quotes inside each other
MAX_TABLE_CELLS = 20_000
MAX_IMAGE_BYTES = 32 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000


def image_problem(path: Path) -> str | None:
    """Why a raster image is refused, or None. Only the header is read."""
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        return f"is {size / 1024 / 1024:.0f} MB; images may be at most {MAX_IMAGE_BYTES // 1024 // 1024} MB"
    if path.suffix.lower() == ".svg":
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        return "has too many pixels to decode safely"
    except (OSError, ValueError):
        return "cannot be read as an image (corrupt or not the format its name says)"
    if width * height > MAX_IMAGE_PIXELS:
        return f"is {width}×{height} pixels; images may have at most {MAX_IMAGE_PIXELS // 1_000_000} million pixels"
    return None

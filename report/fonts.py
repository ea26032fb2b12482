"""The bundled fonts: where they are, how CSS names them, and how they are subset.

Builds use these files only. The PDF renderer also points fontconfig at them
alone (:func:`isolated_fontconfig`), so that no system font can stand in for a
missing glyph and a machine without fonts builds the same PDF.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from report.i18n import is_cjk

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Face:
    family: str
    weight: int
    file: str
    style: str  # "serif", "sans" or "symbols"
    cjk: bool


FACES = (
    Face("Noto Serif CJK JP", 400, "NotoSerifCJKjp-Regular.otf", "serif", True),
    Face("Noto Serif CJK JP", 700, "NotoSerifCJKjp-Bold.otf", "serif", True),
    Face("Noto Sans CJK JP", 400, "NotoSansCJKjp-Regular.otf", "sans", True),
    Face("Noto Sans CJK JP", 700, "NotoSansCJKjp-Bold.otf", "sans", True),
    Face("Noto Serif", 400, "NotoSerif-Regular.ttf", "serif", False),
    Face("Noto Serif", 700, "NotoSerif-Bold.ttf", "serif", False),
    Face("Noto Sans", 400, "NotoSans-Regular.ttf", "sans", False),
    Face("Noto Sans", 700, "NotoSans-Bold.ttf", "sans", False),
    Face("Noto Sans Math", 400, "NotoSansMath-Regular.ttf", "symbols", False),
)
LICENCE_FILES = ("OFL.txt", "README.md")


def fonts_dir() -> Path:
    """``report/fonts`` in an installed wheel, else the checkout's ``assets/fonts``."""
    packaged = PACKAGE_DIR / "fonts"
    if packaged.is_dir():
        return packaged
    return PACKAGE_DIR.parent / "assets" / "fonts"


def font_stack(style: str, language: str) -> tuple[str, ...]:
    """Families in fallback order: the CJK face leads for CJK text (its punctuation and
    spacing are right there), the Latin companion leads for other languages."""
    cjk = "Noto Serif CJK JP" if style == "serif" else "Noto Sans CJK JP"
    latin = "Noto Serif" if style == "serif" else "Noto Sans"
    first, second = (cjk, latin) if is_cjk(language) else (latin, cjk)
    return (first, second, "Noto Sans Math")


def css_family_list(style: str, language: str) -> str:
    return ", ".join(f'"{family}"' for family in font_stack(style, language))


def font_face_css(url_for: dict[str, str]) -> str:
    """@font-face rules for the faces in ``url_for`` (file name → URL)."""
    rules = []
    for face in FACES:
        if face.file in url_for:
            fmt = "opentype" if face.file.endswith(".otf") else "truetype"
            rules.append(
                "@font-face {\n"
                f'  font-family: "{face.family}";\n'
                f"  font-weight: {face.weight};\n"
                "  font-style: normal;\n"
                f'  src: url("{url_for[face.file]}") format("{fmt}");\n'
                "}\n"
            )
    return "".join(rules)


@cache
def cmap(file: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    font = TTFont(fonts_dir() / file, lazy=True)
    return frozenset(font.getBestCmap())


def missing_characters(text: Iterable[str]) -> set[str]:
    """Characters no bundled face can draw (ignoring controls and white space)."""
    covered = frozenset().union(*(cmap(face.file) for face in FACES if face.weight == 400))
    return {c for c in set(text) if ord(c) not in covered and c.isprintable() and not c.isspace()}


def subset(face: Face, characters: Iterable[str]) -> bytes:
    """The face cut down to ``characters``, keeping every OpenType feature
    (vert, vrt2, palt, locl, ruby …) and the licence name records."""
    import uharfbuzz as hb

    request = hb.SubsetInput()
    request.unicode_set.update(ord(c) for c in characters)
    features = request.layout_feature_tag_set
    features.clear()
    features.invert()  # all features, not only HarfBuzz's default list
    request.name_id_set.update(range(0, 26))
    blob = hb.Blob.from_file_path(str(fonts_dir() / face.file))
    return bytes(hb.subset(hb.Face(blob), request).blob.data)


def fontconfig_file(cache_dir: Path) -> Path:
    """A fontconfig configuration that knows the bundled fonts and nothing else."""
    directory = fonts_dir()
    aliases = "".join(
        f"<alias><family>{generic}</family><prefer>"
        + "".join(f"<family>{family}</family>" for family in font_stack(style, "ja"))
        + "</prefer></alias>"
        for generic, style in (("serif", "serif"), ("sans-serif", "sans"), ("monospace", "sans"))
    )
    text = (
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig>'
        f"<dir>{directory}</dir><cachedir>{cache_dir / 'fontconfig'}</cachedir>{aliases}</fontconfig>\n"
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = cache_dir / f"fonts-{digest}.conf"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path

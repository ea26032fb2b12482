"""The bundled fonts: where they are, how CSS names them, and how they are subset.

Builds use these files only. The PDF renderer also points fontconfig at them
alone (:func:`isolated_fontconfig`), so that no system font can stand in for a
missing glyph and a machine without fonts builds the same PDF.
"""

from __future__ import annotations

import bisect
import hashlib
import html
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

from report.cache import Cache, code_fingerprint, digest, write_atomic
from report.i18n import is_cjk, language_variety

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Face:
    family: str
    weight: int
    file: str
    style: str  # "serif", "sans", "mono" or "fallback" (behind every stack, at any weight)
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
    Face("Noto Sans Mono CJK JP", 400, "NotoSansMonoCJKjp-Regular.otf", "mono", True),
    Face("Noto Sans Mono CJK JP", 700, "NotoSansMonoCJKjp-Bold.otf", "mono", True),
    # Behind the text faces of every stack, in this order (see FALLBACK_FAMILIES): what neither
    # text face draws. First the Hebrew, Arabic and Devanagari a book quotes (as the Rust book's
    # chapter on strings does): Noto Sans Math has Arabic letters too (for Arabic mathematics),
    # but not the forms that join them; the two others share no character with the faces after
    # them. Then ≒ ⦅⦆, dingbats, arrows and other symbols; then emoji, monochrome like the text
    # around them.
    Face("Noto Sans Hebrew", 400, "NotoSansHebrew-Regular.ttf", "fallback", False),
    Face("Noto Sans Arabic", 400, "NotoSansArabic-Regular.ttf", "fallback", False),
    Face("Noto Sans Devanagari", 400, "NotoSansDevanagari-Regular.ttf", "fallback", False),
    Face("Noto Sans Math", 400, "NotoSansMath-Regular.ttf", "fallback", False),
    Face("Noto Sans Symbols2", 400, "NotoSansSymbols2-Regular.ttf", "fallback", False),
    Face("Noto Sans Symbols", 400, "NotoSansSymbols-Regular.ttf", "fallback", False),
    Face("Noto Emoji", 400, "NotoEmoji-Regular.ttf", "fallback", False),
)
FALLBACK_FAMILIES = tuple(face.family for face in FACES if face.style == "fallback")
LICENCE_FILES = ("OFL.txt", "README.md")


@cache
def fonts_dir() -> Path:
    """``report/fonts`` in an installed wheel, else the checkout's ``assets/fonts``."""
    packaged = PACKAGE_DIR / "fonts"
    if packaged.is_dir():
        return packaged
    return PACKAGE_DIR.parent / "assets" / "fonts"


def font_stack(style: str, language: str) -> tuple[str, ...]:
    """Families in fallback order: the CJK face leads for CJK text (its punctuation and
    spacing are right there), the Latin companion leads for other languages. Code (``mono``)
    is set in the monospace CJK face whatever the language: it has Latin, kana and kanji
    at fixed widths, so columns line up; the sans faces stand in for what it lacks."""
    if style == "mono":
        return ("Noto Sans Mono CJK JP", *font_stack("sans", language))
    cjk = "Noto Serif CJK JP" if style == "serif" else "Noto Sans CJK JP"
    latin = "Noto Serif" if style == "serif" else "Noto Sans"
    first, second = (cjk, latin) if is_cjk(language) else (latin, cjk)
    return (first, second, *FALLBACK_FAMILIES)


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


# The report's cache, while a build runs: cmaps and subsets are then read from it and kept in it.
_CACHE: ContextVar[Cache | None] = ContextVar("font_cache", default=None)
_CMAPS: dict[tuple[str, int, int, int], CodePoints] = {}  # path and stat signature → code points


@contextmanager
def cached(cache: Cache | None) -> Iterator[None]:
    """Within the block, :func:`cmap` and :func:`subset` use ``cache`` (keyed by the font
    file's hash and the character set), so a warm build never opens the large font files."""
    token = _CACHE.set(cache)
    try:
        yield
    finally:
        _CACHE.reset(token)


def active_cache() -> Cache | None:
    """The cache :func:`cached` gives the block, if any (the parse stage's memos use it too)."""
    return _CACHE.get()


def font_digest(file: str, cache: Cache | None = None) -> str:
    """SHA-256 of a bundled font file (remembered by stat signature in the cache)."""
    cache = cache or _CACHE.get()
    path = fonts_dir() / file
    found = cache.file_digest(path) if cache is not None else None
    if found is None:
        status = path.stat()
        found = digest(str(path), str(status.st_size), str(status.st_mtime_ns))
    return found


@dataclass(frozen=True)
class CodePoints:
    """The code points a face maps to glyphs, as sorted runs, looked up by bisection: a set of
    them, made anew from the cached runs at every build, took 48 ms for the bundled faces."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]  # each run's last code point

    @classmethod
    def of(cls, runs: Sequence[Sequence[int]]) -> CodePoints:
        """From ``[first, last]`` runs, in order and not overlapping (ValueError for any other value)."""
        if not all(
            isinstance(run, list | tuple) and len(run) == 2 and all(type(code) is int for code in run) for run in runs
        ):
            raise ValueError("not runs of code points")
        if any(first > last for first, last in runs) or any(
            later[0] <= earlier[1] for earlier, later in pairwise(runs)
        ):
            raise ValueError("runs of code points out of order")
        return cls(tuple(run[0] for run in runs), tuple(run[1] for run in runs))

    def __contains__(self, code: int) -> bool:
        at = bisect.bisect_right(self.starts, code) - 1
        return at >= 0 and code <= self.ends[at]

    def among(self, codes: Iterable[int]) -> set[int]:
        return {code for code in codes if code in self}


def cmap(file: str) -> CodePoints:
    """The code points the face maps to glyphs."""
    cache = _CACHE.get()
    path = fonts_dir() / file
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns, status.st_ino)
    if key in _CMAPS:
        return _CMAPS[key]
    entry_key = digest("cmap", font_digest(file, cache))
    value = cache.load("cmap", entry_key) if cache is not None else None
    try:
        points = CodePoints.of(value["ranges"]) if value is not None else None
    except (KeyError, TypeError, ValueError):  # written by another version
        points = None
    if points is None:
        import uharfbuzz as hb

        runs = _ranges(hb.Face(hb.Blob.from_file_path(str(path))).unicodes)  # 50 times fontTools' speed
        points = CodePoints.of(runs)
        if cache is not None:
            cache.store("cmap", entry_key, {"ranges": runs})
    _CMAPS[key] = points
    return points


def _ranges(points: Iterable[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for code in sorted(points):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return ranges


def missing_characters(text: Iterable[str]) -> set[str]:
    """Characters no bundled regular face can draw (ignoring controls and white space)."""
    missing = {c for c in set(text) if c.isprintable() and not c.isspace()}
    for face in FACES:
        if face.weight == 400 and missing:  # most text is all in the first face: one cmap read
            covered = cmap(face.file)
            missing = {c for c in missing if ord(c) not in covered}
    return missing


def subset(face: Face, characters: Iterable[str], features: Iterable[str] | None = None) -> bytes:
    """The face cut down to ``characters``, keeping the OpenType ``features`` named (all of
    them by default: vert, vrt2, palt, locl, ruby …) and the licence name records. Within
    :func:`cached`, computed once per font file, character set and feature list."""
    cache = _CACHE.get()
    chosen = None if features is None else tuple(sorted(features))
    if cache is None:
        return _subset(face, characters, chosen)
    data = cache.object_bytes(_subset_object(face, characters, cache, chosen))
    assert data is not None
    return data


def subset_file(face: Face, characters: Iterable[str], cache: Cache) -> Path:
    """The subset as a file in the cache (what WeasyPrint is given instead of the full face),
    with the glyph ids of the full face: the glyphs WeasyPrint sets are the same whatever else
    the subset has, so a part of the PDF laid out with one subset is joined with parts laid
    out with another, and the join cuts the full face (report.render.join)."""
    path = cache.object_path(_subset_object(face, characters, cache, retain_gids=True))
    assert path is not None
    return path


def _subset_object(
    face: Face,
    characters: Iterable[str],
    cache: Cache,
    features: tuple[str, ...] | None = None,
    retain_gids: bool = False,
) -> str:
    chosen = "".join(sorted(set(characters)))
    wanted = ("*" if features is None else ",".join(features)) + (" gids" if retain_gids else "")
    key = digest("subset", code_fingerprint("report.fonts"), face.file, font_digest(face.file, cache), chosen, wanted)
    value = cache.load("subset", key)
    if value is not None and isinstance(value.get("object"), str):
        return str(value["object"])
    name = cache.put_object(_subset(face, chosen, features, retain_gids), Path(face.file).suffix)
    cache.store("subset", key, {"object": name, "face": face.file, "characters": len(chosen)}, objects=[name])
    return name


def _subset(
    face: Face, characters: Iterable[str], features: Iterable[str] | None = None, retain_gids: bool = False
) -> bytes:
    import uharfbuzz as hb

    request = hb.SubsetInput()
    if retain_gids:
        request.flags |= hb.SubsetFlags.RETAIN_GIDS
    request.unicode_set.update(ord(c) for c in characters)
    kept = request.layout_feature_tag_set
    kept.clear()
    if features is None:
        kept.invert()  # all features, not only HarfBuzz's default list
    else:
        kept.update(int.from_bytes(tag.encode(), "big") for tag in features)
    request.name_id_set.update(range(0, 26))
    blob = hb.Blob.from_file_path(str(fonts_dir() / face.file))
    return bytes(hb.subset(hb.Face(blob), request).blob.data)


# What WeasyPrint may draw beyond the characters of the document and its stylesheets: list
# markers, quotes, hyphens, leaders, ellipses, counter styles, full-width forms.
GENERATED_CHARACTERS = frozenset(
    "".join(chr(code) for code in range(0x20, 0x7F))
    + "".join(chr(code) for code in range(0xFF01, 0xFF5F))
    + "\u00a0\u00ad\u2010\u2011\u2013\u2014\u2026\u2022\u2023\u25e6\u25aa\u25ab\u25a0\u25a1\u25cf\u25cb\u2043"
    + "\u201c\u201d\u2018\u2019\u00ab\u00bb\u2039\u203a\u300c\u300d\u300e\u300f\u3000\u3001\u3002\u30fb"
    + "〇一二三四五六七八九十百千万億零壱弐参拾"
    + "αβγδεζηθικλμνξοπρστυφχψω"
    + "\ufe45\ufe46"
)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})")


def print_characters(document: str, stylesheets: Iterable[str]) -> frozenset[str]:
    """Every character the print layout may need: the document's text (entities decoded), its
    stylesheets' (escapes decoded), the generated characters, and the case variants of all."""
    css = "".join(stylesheets)
    escaped = {chr(int(code, 16)) for code in _CSS_ESCAPE.findall(css) if int(code, 16) <= 0x10FFFF}
    return _printable_variants(set(html.unescape(document)) | set(css) | escaped) | _GENERATED_VARIANTS


def _printable_variants(characters: set[str]) -> frozenset[str]:
    """The characters and their case variants, those printed only."""
    for character in list(characters):
        for variant in (character.upper(), character.lower()):
            if len(variant) == 1:
                characters.add(variant)
    return frozenset(c for c in characters if c.isprintable() or c in "\u00ad\u3000")


# Found once, not for each part of every build: the facts of a 615-page report's print parts
# took 0.111 s instead of 0.135 (a cold build's, and the first edit's after a stop).
_GENERATED_VARIANTS = _printable_variants(set(GENERATED_CHARACTERS))


# Each CJK language's national standard character set, as Python's codec of its two-byte
# encoding holds it (every pair of bytes from 0xA1 to 0xFE; Big5's from 0x40 for the second).
_STANDARD_SETS = {"ja": "euc_jp", "zh-hans": "gb2312", "zh-hant": "big5", "ko": "euc_kr"}


@cache
def standard_characters(language: str) -> frozenset[str]:
    """The characters of the national standard set a CJK language is written in — JIS X 0208
    for Japanese (6,878 printable), GB 2312 for Simplified Chinese (7,444), Big5 for
    Traditional (13,705), KS X 1001 for Korean (8,223) — or none for another language: what
    its authors' new text is all but always made of (see report.render.pdf.PdfRenderer._subsets)."""
    codec = _STANDARD_SETS.get(language_variety(language))
    if codec is None:
        return frozenset()
    found: set[str] = set()
    for high in range(0xA1, 0xFF):
        for low in range(0x40 if codec == "big5" else 0xA1, 0xFF):
            with suppress(UnicodeDecodeError):
                found.update(bytes((high, low)).decode(codec))
    return frozenset(character for character in found if character.isprintable())


_CODE = re.compile(r"<(code|pre|kbd|samp)\b[^>]*>(.*?)</\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def code_text(document: str) -> str:
    """The text of the document's code (``code``, ``pre``, ``kbd``, ``samp``): what the
    monospace faces set. They are cut to it (and the generated characters) alone, so that a
    report's prose, and an edit of it, never makes them be subset again."""
    return "".join(_TAG.sub("", match.group(2)) for match in _CODE.finditer(document))


def bundled(codes: set[int]) -> set[int]:
    """Those of ``codes`` some bundled face can draw (no cmap is read for none)."""
    found: set[int] = set()
    for face in FACES:
        if len(found) < len(codes):
            found |= cmap(face.file).among(codes)
    return found


def fontconfig_file(cache_dir: Path, bundled_dir: bool = True) -> Path:
    """A fontconfig configuration that knows the bundled fonts and nothing else; with
    ``bundled_dir=False`` it knows no font file at all, only the fallback order of the
    families, and every face comes from an ``@font-face`` rule (the subset fonts)."""
    directory = fonts_dir()
    aliases = "".join(
        f"<alias><family>{generic}</family><prefer>"
        + "".join(f"<family>{family}</family>" for family in font_stack(style, "ja"))
        + "</prefer></alias>"
        for generic, style in (("serif", "serif"), ("sans-serif", "sans"), ("monospace", "mono"))
    )
    text = (
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig>'
        + (f"<dir>{directory}</dir>" if bundled_dir else "")
        + f"<cachedir>{cache_dir / 'fontconfig'}</cachedir>{aliases}</fontconfig>\n"
    )
    path = cache_dir / f"fonts-{hashlib.sha256(text.encode()).hexdigest()[:12]}.conf"
    if not path.exists():
        write_atomic(path, text.encode())
    return path

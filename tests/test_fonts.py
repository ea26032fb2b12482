"""The bundled fonts draw every character a Japanese report can hold, in both stacks and weights."""

from __future__ import annotations

import html
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from hypothesis import example, given
from hypothesis import strategies as st

from report.fonts import (
    FACES,
    FALLBACK_FAMILIES,
    GENERATED_CHARACTERS,
    LICENCE_FILES,
    CodePoints,
    _ranges,
    bundled,
    cmap,
    font_stack,
    fonts_dir,
    missing_characters,
    print_characters,
    standard_characters,
)


@cache
def codepoints(file: str) -> frozenset[int]:
    return frozenset(TTFont(fonts_dir() / file, lazy=True).getBestCmap())


def stack(style: str, weight: int) -> frozenset[int]:
    """What a stack (report.fonts.font_stack: its faces at one weight, and Noto Sans Math) covers."""
    families = font_stack(style, "ja")
    faces = [f for f in FACES if f.family in families and (f.weight == weight or f.style == "fallback")]
    assert len(faces) == len(families) and {f.family for f in faces} == set(families), faces
    return frozenset().union(*(codepoints(f.file) for f in faces))


STACKS = [(style, weight) for style in ("serif", "sans", "mono") for weight in (400, 700)]


def _decoded(codec: str, sequences) -> set[str]:  # type: ignore[no-untyped-def]
    characters: set[str] = set()
    for data in sequences:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue  # an unassigned cell
        characters.update(text)  # a cell may decode to two code points (base + combining mark)
    return characters


def jis_x_0208() -> set[str]:
    return _decoded("euc_jp", (bytes([a, b]) for a in range(0xA1, 0xFF) for b in range(0xA1, 0xFF)))


def jis_x_0213() -> set[str]:
    plane1 = (bytes([a, b]) for a in range(0xA1, 0xFF) for b in range(0xA1, 0xFF))
    plane2 = (bytes([0x8F, a, b]) for a in range(0xA1, 0xFF) for b in range(0xA1, 0xFF))
    return _decoded("euc_jis_2004", plane1) | _decoded("euc_jis_2004", plane2)


def ranges(*spans: tuple[int, int]) -> set[str]:
    return {chr(c) for start, end in spans for c in range(start, end + 1)}


def assigned(*spans: tuple[int, int]) -> set[str]:
    """The characters of Unicode blocks that are assigned (as Python's Unicode version knows)."""
    return {c for c in ranges(*spans) if unicodedata.category(c) != "Cn"}


REPERTOIRES = {
    "JIS X 0208": jis_x_0208,
    "JIS X 0213": jis_x_0213,
    "Hangul syllables": lambda: ranges((0xAC00, 0xD7A3)),
    "CJK unified ideographs U+4E00–U+9FEA": lambda: ranges((0x4E00, 0x9FEA)),
    "Latin-1 and Latin Extended-A": lambda: ranges((0x20, 0x7E), (0xA1, 0xAC), (0xAE, 0xFF), (0x100, 0x17F)),
    "Greek letters": lambda: ranges((0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9)),
    "Cyrillic letters": lambda: ranges((0x410, 0x44F)),
    "Arrows": lambda: assigned((0x2190, 0x21FF)),
    "Dingbats": lambda: assigned((0x2700, 0x27BF)),
    "Miscellaneous Symbols": lambda: assigned((0x2600, 0x26FF)),
    "Emoticons": lambda: assigned((0x1F600, 0x1F64F)),
    "Transport and Map Symbols": lambda: assigned((0x1F680, 0x1F6FF)),
    "Hebrew letters and points": lambda: assigned((0x0591, 0x05C7), (0x05D0, 0x05EA)),
    "Arabic letters and marks": lambda: ranges((0x0621, 0x065F), (0x0660, 0x066D)),
    "Devanagari": lambda: assigned((0x0900, 0x097F)),
}


def test_repertoires_are_what_they_claim() -> None:
    assert len(jis_x_0208()) > 6_800
    assert len(jis_x_0213()) > 11_000
    assert {"﨑", "≒", "⦅", "⦆", "\u309a"} <= jis_x_0213()
    assert "亜" in jis_x_0208() and "𠀋" not in jis_x_0208()


@pytest.mark.parametrize("repertoire", sorted(REPERTOIRES))
@pytest.mark.parametrize(("style", "weight"), STACKS, ids=[f"{s}-{w}" for s, w in STACKS])
def test_stack_covers(repertoire: str, style: str, weight: int) -> None:
    covered = stack(style, weight)
    characters = REPERTOIRES[repertoire]()
    missing = sorted(c for c in characters if ord(c) not in covered and not c.isspace())
    assert not missing, f"{len(missing)} missing, e.g. " + " ".join(f"U+{ord(c):04X}" for c in missing[:30])


@pytest.mark.parametrize("weight", [400, 700])
def test_the_monospace_face_sets_japanese_code_itself(weight: int) -> None:
    """Code is set in the monospace face, not in a fallback: it has ASCII and JIS X 0208 but
    ≒ (which Noto Sans Math draws, as for the other stacks)."""
    mono = next(f for f in FACES if f.style == "mono" and f.weight == weight)
    characters = jis_x_0208() | ranges((0x21, 0x7E))
    assert {c for c in characters if ord(c) not in codepoints(mono.file)} == {"≒"}


def test_files_are_single_faces_with_licence() -> None:
    directory = fonts_dir()
    assert not list(directory.rglob("*.ttc")), "collections (.ttc) must not be shipped: one face per file"
    assert not list(directory.rglob("*.otc"))
    for face in FACES:
        assert (directory / face.file).is_file(), face.file
    for name in LICENCE_FILES:
        assert (directory / name).is_file(), name
    licence = (directory / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE" in licence.upper()


def test_noto_sans_math_has_the_math_table_formulas_are_laid_out_by() -> None:
    """ziamath places fractions, scripts and radicals by the OpenType MATH table (report/math.py)."""
    font = TTFont(fonts_dir() / "NotoSansMath-Regular.ttf", lazy=True)
    assert "MATH" in font
    constants = font["MATH"].table.MathConstants
    assert constants.FractionRuleThickness.Value > 0 and constants.AxisHeight.Value > 0


@pytest.mark.parametrize("face", FACES, ids=[f.file for f in FACES])
def test_face_names_and_weights(face) -> None:  # type: ignore[no-untyped-def]
    font = TTFont(fonts_dir() / face.file, lazy=True)
    assert font["name"].getDebugName(1).startswith(face.family), font["name"].getDebugName(1)
    assert font["OS/2"].usWeightClass == face.weight
    # Embedding allowed: installable (0) or editable (bit 3); never restricted (bit 1).
    assert not font["OS/2"].fsType & 0x2


@pytest.mark.parametrize("name", ["ja-basic", "cjk-mixed", "en-basic", "ko", "zh", "briefing"])
def test_the_print_parts_have_the_characters_of_the_whole_document(name: str) -> None:
    """The PDF's fonts are cut to the characters of its parts: those of the whole document."""
    from report.assemble import Assembler
    from report.build import prepare

    root = Path(__file__).parent.parent if name == "briefing" else Path(__file__).parent / "fixtures" / name
    assembler = Assembler(prepare(root)[0])
    stylesheets = assembler.print_stylesheets({})
    parts = "".join(source for _, source in assembler.print_parts)
    assert print_characters(parts, stylesheets) == print_characters(assembler.print_document(), stylesheets)


def test_other_scripts_symbols_and_emoji_stand_behind_the_text_faces() -> None:
    """Text faces lead (their ✓ and → match the text), then the faces of the scripts they lack,
    the symbol faces, emoji last. Arabic comes to its own face, not to Noto Sans Math's Arabic
    letters (for mathematics: they have no forms that join them); Hebrew and Devanagari
    characters are in no face after theirs."""
    for language in ("ja", "en"):
        for style in ("serif", "sans"):
            assert font_stack(style, language)[2:] == FALLBACK_FAMILIES
    assert FALLBACK_FAMILIES[-1] == "Noto Emoji"
    assert not missing_characters("✔✖👋→➡ שָׁלוֹם السلام عليكم नमस्ते")
    for text, family in (
        ("السلام عليكم", "Noto Sans Arabic"),
        ("שָׁלוֹם", "Noto Sans Hebrew"),
        ("नमस्ते", "Noto Sans Devanagari"),
    ):
        for character in text.replace(" ", ""):
            first = next(
                face
                for name in font_stack("serif", "ja")
                for face in FACES
                if face.family == name and ord(character) in codepoints(face.file)
            )
            assert first.family == family, (character, first.family)
    math = codepoints("NotoSansMath-Regular.ttf")
    assert ord("س") in math, "the reason Arabic's face comes first"
    files = {face.family: face.file for face in FACES}
    text_faces = frozenset().union(
        *(codepoints(files[name]) for name in font_stack("serif", "ja")[:2] + font_stack("sans", "ja")[:2])
    )
    after = frozenset().union(
        *(codepoints(files[name]) for name in FALLBACK_FAMILIES[FALLBACK_FAMILIES.index("Noto Sans Math") :])
    )
    for family in ("Noto Sans Hebrew", "Noto Sans Devanagari"):
        assert not (codepoints(files[family]) & after) - text_faces, family


def _shaped(font: bytes, text: str) -> list[tuple[int, int, int, int]]:
    """The glyphs HarfBuzz sets ``text`` with in ``font``: each one's cluster, advance and offsets."""
    import uharfbuzz as hb

    shaper = hb.Font(hb.Face(hb.Blob(font)))
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    hb.shape(shaper, buffer)
    return [
        (i.cluster, p.x_advance, p.x_offset, p.y_offset)
        for i, p in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True)
    ]


@pytest.mark.parametrize(
    ("family", "text"),
    [("Noto Sans Arabic", "السلام عليكم"), ("Noto Sans Hebrew", "שָׁלוֹם"), ("Noto Sans Devanagari", "नमस्ते क्षत्रिय")],
)
def test_the_epub_s_subsets_set_other_scripts_as_their_whole_faces_do(family: str, text: str) -> None:
    """The EPUB embeds each face cut to its text, with the features it keeps (FONT_FEATURES):
    Arabic's joining forms and Devanagari's conjuncts among them, or an e-reader would set
    their letters apart (as it did: 12 glyphs for 11, 6 for 5)."""
    from report.render.epub import subset_face

    face = next(face for face in FACES if face.family == family)
    whole = (fonts_dir() / face.file).read_bytes()
    assert _shaped(subset_face(face, text), text) == _shaped(whole, text)


def test_bundled_reads_what_a_face_has() -> None:
    assert bundled({ord("鬱"), ord("A"), 0x13000}) == {ord("鬱"), ord("A")}
    assert bundled(set()) == set()
    assert missing_characters("鬱A\U00013000 \n") == {"\U00013000"}


@given(st.sets(st.integers(0, 0x2FFFF), max_size=300), st.sets(st.integers(0, 0x2FFFF), max_size=100))
def test_code_points_kept_as_runs_are_the_set_they_were_made_of(points: set[int], asked: set[int]) -> None:
    kept = CodePoints.of(_ranges(points))
    assert all((code in kept) == (code in points) for code in asked | points | {p + 1 for p in points})
    assert kept.among(asked) == asked & points


def test_each_cjk_language_has_its_national_standard_set() -> None:
    """The characters the print faces are cut to once a report has had a new one (see
    report.render.pdf.PdfRenderer._subsets): the standard set of the report's language."""
    japanese = standard_characters("ja-JP")
    assert len(japanese) == 6878 and {"あ", "ヴ", "鬱", "〒", "Ω", "＆"} <= japanese
    assert "鷗" not in japanese and "①" not in japanese  # (JIS X 0213, and a vendor's extension)
    assert "们" in standard_characters("zh") and "們" in standard_characters("zh-Hant")
    assert "한" in standard_characters("ko") and standard_characters("en") == frozenset()


@given(st.text(), st.lists(st.text(max_size=30), max_size=3))
@example("Ǆ &amp; ﬁ", ["h1::before { content: '\\2014\\1F600' }"])
def test_the_characters_to_print_are_the_texts_and_the_generated_ones_with_their_case_variants(
    document: str, stylesheets: list[str]
) -> None:
    """What the PDF's faces are cut to: each character of the document (entities decoded), of
    its stylesheets (escapes decoded) and of GENERATED_CHARACTERS, and their one-character
    upper and lower cases, the printable ones (and the soft hyphen and ideographic space)."""
    css = "".join(stylesheets)
    written = set(html.unescape(document)) | set(css) | set(GENERATED_CHARACTERS)
    written |= {chr(int(code, 16)) for code in re.findall(r"\\([0-9a-fA-F]{1,6})", css) if int(code, 16) <= 0x10FFFF}
    cases = {case for character in written for case in (character.upper(), character.lower()) if len(case) == 1}
    expected = {c for c in written | cases if c.isprintable() or c in "\u00ad\u3000"}
    assert print_characters(document, stylesheets) == expected


@pytest.mark.parametrize(
    "runs", [[[5, 3]], [[1, 4], [4, 6]], [[7, 9], [1, 2]], [[1]], [["1", 2]], [[True, 2]], [[1.0, 2]], "ab"]
)
def test_runs_of_code_points_out_of_order_or_of_other_values_are_refused(runs: object) -> None:
    with pytest.raises(ValueError):
        CodePoints.of(runs)  # type: ignore[arg-type]


def test_a_face_s_code_points_are_those_of_its_cmap() -> None:
    face = FACES[0]
    kept = cmap(face.file)
    table = set(TTFont(fonts_dir() / face.file, lazy=True).getBestCmap())
    assert all((code in kept) == (code in table) for code in range(0x30000))

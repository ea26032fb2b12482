"""The naive pipeline the benchmark compares against: what one writes in an afternoon.

markdown-it (the same dialect plugins) → one HTML document → WeasyPrint, with the full
bundled fonts named in ``@font-face`` rules and the built-in print stylesheet; then
ebooklib, one XHTML file per chapter, with the full font files the stylesheet names
embedded (serif and sans CJK, regular and bold: what our EPUB subsets). No cache, no
parallelism, everything from scratch on every run.

    python bench/naive.py REPORT_FOLDER OUT_FOLDER [--same-document]

With ``--same-document`` the PDF is made from the document our builder lays out (its
print HTML and stylesheets: contents with page numbers, footnotes, running heads, a
tagged PDF/UA) instead of the plain one, still with the full fonts, in one process, from
scratch: what our pipeline would cost without its cache, subsets and parallelism.

Prints one JSON line: seconds spent on the PDF and on the EPUB.
"""

from __future__ import annotations

import json
import re
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FONTS = REPO / "assets" / "fonts"
EPUB_FONTS = (
    ("Noto Serif CJK JP", 400, "NotoSerifCJKjp-Regular.otf"),
    ("Noto Serif CJK JP", 700, "NotoSerifCJKjp-Bold.otf"),
    ("Noto Sans CJK JP", 400, "NotoSansCJKjp-Regular.otf"),
    ("Noto Sans CJK JP", 700, "NotoSansCJKjp-Bold.otf"),
)
PDF_FONTS = (
    *EPUB_FONTS,
    ("Noto Serif", 400, "NotoSerif-Regular.ttf"),
    ("Noto Serif", 700, "NotoSerif-Bold.ttf"),
    ("Noto Sans", 400, "NotoSans-Regular.ttf"),
    ("Noto Sans", 700, "NotoSans-Bold.ttf"),
    ("Noto Sans Math", 400, "NotoSansMath-Regular.ttf"),
)
FRONT_MATTER = re.compile(r"^---\n(.*?)\n---\n", re.DOTALL)


def font_faces(url: object) -> str:
    return "".join(
        f'@font-face {{ font-family: "{family}"; font-weight: {weight}; src: url("{url(file)}"); }}\n'  # type: ignore[operator]
        for family, weight, file in PDF_FONTS
    )


def chapters(root: Path) -> list[tuple[str, str]]:
    """(title, HTML) of each chapter."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.attrs import attrs_block_plugin, attrs_plugin
    from mdit_py_plugins.deflist import deflist_plugin
    from mdit_py_plugins.footnote import footnote_plugin

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(footnote_plugin).use(deflist_plugin).use(attrs_plugin).use(attrs_block_plugin)
    config = tomllib.loads((root / "report.toml").read_text(encoding="utf-8"))
    out = []
    for name in config["chapters"]:
        text = (root / name).read_text(encoding="utf-8")
        meta = FRONT_MATTER.match(text)
        title = re.search(r"^title:\s*(.+)$", meta.group(1), re.MULTILINE) if meta else None
        body = text[meta.end() :] if meta else text
        # Images are relative to the chapter; the document's base is the report folder.
        body = body.replace("](../", "](")
        out.append((title.group(1).strip() if title else name, md.render(body)))
    return out


def build_pdf(root: Path, target: Path, parts: list[tuple[str, str]]) -> None:
    import weasyprint

    config = tomllib.loads((root / "report.toml").read_text(encoding="utf-8"))
    body = "".join(f'<section class="chapter"><h1>{title}</h1>{html}</section>' for title, html in parts)
    document = f'<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>{config["title"]}</title></head><body>{body}</body></html>'
    css = (
        font_faces(lambda file: (FONTS / file).as_uri())
        + (REPO / "report" / "styles" / "print.css").read_text(encoding="utf-8")
        + '@page { size: A4; margin: 20mm; } html { font-family: "Noto Serif CJK JP", "Noto Serif"; font-size: 10.5pt; }'
        + 'h1, h2, h3 { font-family: "Noto Sans CJK JP", "Noto Sans"; }'
    )
    fonts = weasyprint.text.fonts.FontConfiguration()
    stylesheet = weasyprint.CSS(string=css, font_config=fonts)
    weasyprint.HTML(string=document, base_url=root.as_uri() + "/").write_pdf(
        target, stylesheets=[stylesheet], font_config=fonts
    )


def build_same_pdf(root: Path, target: Path) -> None:
    """Our print document and stylesheets, with the full bundled faces, laid out in this process."""
    import weasyprint

    from report.assemble import Assembler
    from report.build import prepare
    from report.fonts import FACES, fonts_dir

    book, _ = prepare(root)
    assembler = Assembler(book)
    fonts = weasyprint.text.fonts.FontConfiguration()
    base = root.as_uri() + "/"
    urls = {face.file: (fonts_dir() / face.file).as_uri() for face in FACES}
    stylesheets = [
        weasyprint.CSS(string=css, base_url=base, font_config=fonts) for css in assembler.print_stylesheets(urls)
    ]
    variant = None if book.config.pdf.variant == "none" else book.config.pdf.variant
    weasyprint.HTML(string=assembler.print_document(), base_url=base).write_pdf(
        target, stylesheets=stylesheets, font_config=fonts, pdf_variant=variant, pdf_tags=True
    )


def build_epub(root: Path, target: Path, parts: list[tuple[str, str]]) -> None:
    from ebooklib import epub

    config = tomllib.loads((root / "report.toml").read_text(encoding="utf-8"))
    book = epub.EpubBook()
    book.set_identifier("urn:uuid:naive")
    book.set_title(config["title"])
    book.set_language("ja")
    css = (
        "".join(
            f'@font-face {{ font-family: "{family}"; font-weight: {weight}; src: url("../fonts/{file}"); }}\n'
            for family, weight, file in EPUB_FONTS
        )
        + 'body { font-family: "Noto Serif CJK JP"; } h1, h2, h3 { font-family: "Noto Sans CJK JP"; }'
    )
    book.add_item(epub.EpubItem(uid="css", file_name="css/book.css", media_type="text/css", content=css.encode()))
    for index, (_, _, file) in enumerate(EPUB_FONTS):
        data = (FONTS / file).read_bytes()
        book.add_item(epub.EpubItem(uid=f"font{index}", file_name=f"fonts/{file}", media_type="font/otf", content=data))
    items = []
    for index, (title, html) in enumerate(parts):
        item = epub.EpubHtml(title=title, file_name=f"chapter{index}.xhtml", lang="ja")
        item.content = f"<h1>{title}</h1>{html}"
        item.add_link(href="css/book.css", rel="stylesheet", type="text/css")
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(target), book)


def main() -> None:
    root, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = chapters(root)
    if "--same-document" in sys.argv:
        build_same_pdf(root, out / "naive.pdf")
    else:
        build_pdf(root, out / "naive.pdf", parts)
    pdf_done = time.perf_counter()
    build_epub(root, out / "naive.epub", parts)
    print(json.dumps({"pdf": pdf_done - started, "epub": time.perf_counter() - pdf_done}))


if __name__ == "__main__":
    main()

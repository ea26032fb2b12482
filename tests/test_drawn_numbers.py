"""The page numbers a worker records as it draws a part (report/render/weasy.py): for each, the
glyphs and widths of the ten digits in the font it is drawn in, for the join to draw any number
with. They are measured once a face and size, from the font the drawing adds for the number's
first run; what they record is what shaping each number again finds."""

from __future__ import annotations

from pathlib import Path

from helpers import run_as_worker

CSS = """
@page { size: A5; margin: 18mm 15mm; @bottom-center { content: counter(page); font-size: 8pt; } }
body { font-family: "Noto Serif", "Noto Serif CJK JP"; font-size: 10pt; }
.sans { font-family: "Noto Sans", "Noto Sans CJK JP"; }
.bold { font-weight: 700; }
.large { font-size: 14pt; }
"""

# Page numbers in several faces and sizes: a folio (sans 8pt, in the page's margin), the
# contents' numbers and a cross-reference's, and an index's page lists.
BODY = "".join(
    f'<p class="{classes}">{word}<span class="page-number" data-page-of="a{n}">000</span>ページ、'
    f'索引<a class="page-list" data-page-of="a{n} b{n}" href="#a0">00–00, 000</a></p>'
    for n, (classes, word) in enumerate(
        [("", "本文"), ("sans", "見出し"), ("bold", "強調"), ("sans bold large", "大きな見出し"), ("large", "大")] * 12
    )
)
HTML = f'<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>試し</title></head><body><p id="a0">始め</p>{BODY}</body></html>'

# In a fresh interpreter, as a PDF worker: fontconfig sees only the test's fonts. One worker
# draws the part twice, each digit measured from its text box shaped again (as before the
# digits were measured once a font), then as it draws now; prints the numbers recorded, the
# bytes drawn and how many faces and sizes were measured.
DRAW = """
import contextlib, json, sys
from pathlib import Path
from report.render import weasy
weasy.load_weasyprint()
job = json.load(sys.stdin)
styles = weasy.Styles(
    (job["css"],), job["base_url"], (Path(job["folder"]),), Path(job["fontconfig"]), "pdf/ua-1", "styles", ()
)
worker = weasy.Worker()
worker.use(styles)
noted = weasy._digits_of_first_font
results = {}
for way in ("shaped again", "measured once"):
    weasy._digits_of_first_font = noted if way == "measured once" else lambda stream: contextlib.nullcontext([])
    part = weasy.PartJob(way, job["html"])
    worker.layout(part)
    target = Path(job["folder"]) / (way + ".pdf")
    drawn = worker.draw(weasy.DrawJob(part, (), 1, target))
    numbers = [(n.page, n.ref, n.digits, n.digit_widths, n.glyphs_at) for n in weasy.unpacked_numbers(drawn.numbers)]
    results[way] = {"numbers": numbers, "pdf": target.read_bytes().hex(), "fonts": len(weasy._RECORDING.digits)}
json.dump(results, sys.stdout)
"""


def test_the_digits_measured_once_a_font_are_those_of_each_number_shaped_again(tmp_path: Path) -> None:
    results = run_as_worker(DRAW, tmp_path, HTML + "0123456789", CSS, html=HTML)
    shaped, measured = results["shaped again"], results["measured once"]
    assert len(measured["numbers"]) >= 2 * 60  # every number and list (and the folios) recorded
    assert {ref for _, ref, *_ in measured["numbers"]} >= {"", "a1", "a2 b2"}
    assert measured["numbers"] == shaped["numbers"]
    assert measured["pdf"] == shaped["pdf"]  # the digits noted in each font's widths and Unicode map alike
    # Serif and sans, regular and bold, at 8, 10 and 14 pt (a face's advances scale with its size).
    assert measured["fonts"] >= 5
    widths = {tuple(widths) for _, _, _, widths, _ in measured["numbers"]}
    assert len(widths) >= 5

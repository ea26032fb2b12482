"""Labels and interface words in the report's language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Words:
    chapter: str  # format with {n}
    section: str
    figure: str
    table: str
    contents: str
    notes: str
    cover: str
    title_page: str
    start: str
    page_list: str
    page_reference: str  # a cross-reference to a figure or table elsewhere, in print: {label} on {page}
    cutoff_date: str  # the information cut-off date (report.toml's cutoff-date): {date}
    by: str  # the colophon's label before the authors
    published_by: str  # the colophon's label before the publisher
    note: str  # a footnote as a link to it names it (the PDF's link description), format with {n}
    listing: str  # a numbered code block
    callouts: Mapping[str, str] = field(default_factory=dict)  # a callout's title by kind (callouts.CALLOUT_KINDS)
    bibliography: str = ""  # the generated bibliography's title
    index: str = ""  # the generated index's title
    index_other: str = ""  # the index's group of terms neither kana nor Latin
    equation: str = "({n})"  # a numbered display equation, as a cross-reference names it
    chart_data: str = "Data"  # the EPUB's table of a chart's data, behind <details>


_WORDS = {
    "ja": Words(
        "第{n}章",
        "{n}節",
        "図{n}",
        "表{n}",
        "目次",
        "注",
        "表紙",
        "扉",
        "本文",
        "ページ一覧",
        "{page}ページの{label}",
        "情報基準日　{date}",
        "編著",
        "発行",
        "注{n}",
        listing="リスト{n}",
        callouts={"note": "注", "tip": "ヒント", "important": "重要", "warning": "警告", "caution": "注意"},
        bibliography="参考文献",
        index="索引",
        index_other="その他",
        equation="式{n}",
        chart_data="データ",
    ),
    "zh-hans": Words(
        "第{n}章",
        "{n}节",
        "图{n}",
        "表{n}",
        "目录",
        "注释",
        "封面",
        "扉页",
        "正文",
        "页码",
        "第{page}页的{label}",
        "信息截至　{date}",
        "编著",
        "出版",
        "注释{n}",
        listing="代码{n}",
        callouts={"note": "注", "tip": "提示", "important": "重要", "warning": "警告", "caution": "注意"},
        bibliography="参考文献",
        index="索引",
        index_other="其他",
        equation="式{n}",
        chart_data="数据",
    ),
    "zh-hant": Words(
        "第{n}章",
        "{n}節",
        "圖{n}",
        "表{n}",
        "目錄",
        "註釋",
        "封面",
        "扉頁",
        "正文",
        "頁碼",
        "第{page}頁的{label}",
        "資訊截至　{date}",
        "編著",
        "出版",
        "註釋{n}",
        listing="程式碼{n}",
        callouts={"note": "註", "tip": "提示", "important": "重要", "warning": "警告", "caution": "注意"},
        bibliography="參考文獻",
        index="索引",
        index_other="其他",
        equation="式{n}",
        chart_data="數據",
    ),
    "ko": Words(
        "제{n}장",
        "{n}절",
        "그림 {n}",
        "표 {n}",
        "목차",
        "주",
        "표지",
        "속표지",
        "본문",
        "쪽 목록",
        "{page}쪽의 {label}",
        "정보 기준일 {date}",
        "편저",
        "발행",
        "주 {n}",
        listing="코드 {n}",
        callouts={"note": "참고", "tip": "팁", "important": "중요", "warning": "경고", "caution": "주의"},
        bibliography="참고 문헌",
        index="찾아보기",
        index_other="기타",
        equation="식 {n}",
        chart_data="데이터",
    ),
    "en": Words(
        "Chapter {n}",
        "Section {n}",
        "Figure {n}",
        "Table {n}",
        "Contents",
        "Notes",
        "Cover",
        "Title page",
        "Start of content",
        "Page list",
        "{label} on page {page}",
        "Information as of {date}",
        "By",
        "Published by",
        "Note {n}",
        listing="Listing {n}",
        callouts={"note": "Note", "tip": "Tip", "important": "Important", "warning": "Warning", "caution": "Caution"},
        bibliography="References",
        index="Index",
        index_other="Other",
        equation="Equation {n}",
    ),
}

CJK_LANGUAGES = ("ja", "zh", "ko")


def words_for(language: str) -> Words:
    return _WORDS.get(language_variety(language), _WORDS["en"])


def language_variety(language: str) -> str:
    """The language of a BCP 47 tag, Chinese by its script: "ja", "zh-hans", "zh-hant"."""
    tag = language.lower()
    if tag.startswith("zh"):
        return "zh-hant" if is_traditional_chinese(tag) else "zh-hans"
    return tag.split("-")[0]


def is_traditional_chinese(language: str) -> bool:
    tag = language.lower()
    return tag.startswith("zh") and any(part in tag for part in ("hant", "-tw", "-hk", "-mo"))


def is_cjk(language: str) -> bool:
    return language.lower().split("-")[0] in CJK_LANGUAGES

"""Labels and interface words in the report's language."""

from __future__ import annotations

from dataclasses import dataclass


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
    listing: str  # a numbered code block


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
        listing="リスト{n}",
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
        listing="代码{n}",
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
        listing="程式碼{n}",
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
        listing="코드 {n}",
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
        listing="Listing {n}",
    ),
}

CJK_LANGUAGES = ("ja", "zh", "ko")


def words_for(language: str) -> Words:
    tag = language.lower()
    if tag.startswith("zh"):
        traditional = any(part in tag for part in ("hant", "-tw", "-hk", "-mo"))
        return _WORDS["zh-hant" if traditional else "zh-hans"]
    return _WORDS.get(tag.split("-")[0], _WORDS["en"])


def is_cjk(language: str) -> bool:
    return language.lower().split("-")[0] in CJK_LANGUAGES

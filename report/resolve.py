"""Stage 3 — resolve: number chapters, sections, figures and tables across the whole
book, check every cross-reference, and fill the slots the parse stage left."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from types import MappingProxyType

from report.config import Config
from report.errors import Diagnostics
from report.i18n import Words, words_for
from report.model import Book, Chapter, Footnote, Label, Matter, ParsedChapter, Target, TargetKind

_SLOT = re.compile(r'<span class="slot" title="([^"]+)"></span>')
_EMPTY_XREF = re.compile(r'(<a href="#([^"]+)" class="xref[^"]*">)(</a>)')


def resolve_book(config: Config, parsed: tuple[ParsedChapter, ...], diagnostics: Diagnostics) -> Book:
    owner: dict[str, str] = {}
    defined_at: dict[str, str] = {}
    for chapter in parsed:
        for target in chapter.targets:
            where = f"{chapter.source.path.name}:{target.line}"
            if target.id in owner:
                diagnostics.error(
                    chapter.source.path, target.line, f'id "{target.id}" is already defined at {defined_at[target.id]}'
                )
                continue
            owner[target.id] = chapter.id
            defined_at[target.id] = where
    labels = _number(config, parsed)
    for chapter in parsed:
        for reference in chapter.references:
            if reference.target not in owner:
                diagnostics.error(
                    chapter.source.path, reference.line, f'cross-reference to unknown id "#{reference.target}"'
                )
    chapters = tuple(_fill(chapter, labels, owner) for chapter in parsed)
    return Book(
        config=config,
        chapters=chapters,
        labels=MappingProxyType(labels),
        owner=MappingProxyType(owner),
    )


def _number(config: Config, parsed: tuple[ParsedChapter, ...]) -> dict[str, Label]:
    words = words_for(config.language)
    labels: dict[str, Label] = {}
    chapter_number = figure_number = table_number = listing_number = 0
    for chapter in parsed:
        counters = [0, 0]  # sections (##) and subsections (###) within the chapter
        if chapter.source.matter is Matter.BODY:
            chapter_number += 1
        for target in chapter.targets:
            # A duplicate id is an error reported above; a chapter still keeps its own label
            # (a section of an earlier chapter with the same id must not crash the numbering).
            if target.id in labels and target.kind is not TargetKind.CHAPTER:
                continue
            if target.kind is TargetKind.FIGURE:
                figure_number += 1
                labels[target.id] = _counted(words.figure, figure_number)
            elif target.kind is TargetKind.TABLE:
                table_number += 1
                labels[target.id] = _counted(words.table, table_number)
            elif target.kind is TargetKind.LISTING:
                listing_number += 1
                labels[target.id] = _counted(words.listing, listing_number)
            else:
                labels[target.id] = _label(target, chapter, chapter_number, counters, words)
    return labels


def _counted(pattern: str, number: int) -> Label:
    """Chapters, figures, tables and listings print and are referred to by the same label: 第2章, 図1."""
    text = pattern.format(n=number)
    return Label(str(number), text, text)


def _label(target: Target, chapter: ParsedChapter, chapter_number: int, counters: list[int], words: Words) -> Label:
    if target.kind is TargetKind.CHAPTER:
        return _counted(words.chapter, chapter_number) if target.numbered else Label(None, "", target.text)
    if target.kind is TargetKind.SECTION and target.numbered and chapter.source.matter is Matter.BODY:
        depth = min(target.level, 3) - 2
        counters[depth] += 1
        counters[depth + 1 :] = [0] * (len(counters) - depth - 1)
        number = ".".join(str(n) for n in [chapter_number, *counters[: depth + 1]])
        return Label(number, number, words.section.format(n=number))
    return Label(None, "", target.text)


def _fill(chapter: ParsedChapter, labels: Mapping[str, Label], owner: Mapping[str, str]) -> Chapter:
    def slot(match: re.Match[str]) -> str:
        label = labels.get(match.group(1))
        if label is None or not label.caption_prefix:
            return ""
        css = "number" if label.caption_prefix == label.number else "label"
        # The space keeps number and text apart wherever text is extracted (bookmarks, search, copy).
        return f'<span class="{css}">{html.escape(label.caption_prefix)}</span> '

    def xref(match: re.Match[str]) -> str:
        target = match.group(2)
        label = labels.get(target)
        opening = match.group(1)
        is_figure_or_table = (
            label is not None and label.caption_prefix == label.reference and target not in owner.values()
        )
        if is_figure_or_table and owner.get(target) != chapter.id:
            # A figure or table in another chapter: print adds its page number.
            opening = opening.replace('class="xref', 'class="xref xref-far', 1)
        return opening + (html.escape(label.reference) if label else "") + match.group(3)

    body = _EMPTY_XREF.sub(xref, _SLOT.sub(slot, chapter.html))
    return Chapter(
        id=chapter.id,
        source=chapter.source.path,
        matter=chapter.source.matter,
        classes=chapter.source.classes,
        number=int(n) if (n := labels[chapter.id].number) else None,
        label=labels[chapter.id],
        title=chapter.title,
        title_html=chapter.title_html,
        html=body,
        headings=chapter.headings,
        footnotes=tuple(Footnote(f.id, f.number, _EMPTY_XREF.sub(xref, f.html)) for f in chapter.footnotes),
        images=chapter.images,
        svgs=chapter.svgs,
        includes=chapter.includes,
    )

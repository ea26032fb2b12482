"""report — build print PDF and EPUB 3 from Markdown chapters, CJK first."""

__version__ = "0.1.0"

"""SVG figures are inlined (so their text uses the bundled fonts in PDF and EPUB) after cleaning."""

from __future__ import annotations

import re

from lxml import etree

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ALLOWED_ELEMENTS = {
    "svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan", "defs",
    "marker", "title", "desc", "linearGradient", "radialGradient", "stop", "use", "clipPath", "symbol", "pattern",
}  # fmt: skip
_UNSAFE_STYLE = re.compile(r"url\s*\(\s*(?!['\"]?\s*#)|@import|expression\s*\(", re.IGNORECASE)
MAX_SVG_BYTES = 2_000_000


class SvgError(ValueError):
    pass


def sanitize_svg(data: bytes, label: str, id_prefix: str = "") -> str:
    """Parse without entities, DTDs or network; keep drawing elements and local references only.

    ``id_prefix`` goes before every id (and every reference to one), so that two figures, or
    one figure shown twice, never put the same id twice into a page."""
    if len(data) > MAX_SVG_BYTES:
        raise SvgError(f"SVG larger than {MAX_SVG_BYTES // 1_000_000} MB")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise SvgError(f"not well-formed SVG ({error.msg})") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise SvgError("the root element is not <svg> in the SVG namespace")
    for element in list(root.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions, entity references
            _remove(element)
            continue
        namespace, _, name = element.tag[1:].partition("}")
        if namespace != SVG_NS or name not in ALLOWED_ELEMENTS:
            _remove(element)
            continue
        for attribute, value in list(element.attrib.items()):
            if _unsafe_attribute(attribute, value):
                del element.attrib[attribute]
    if id_prefix:
        _prefix_ids(root, id_prefix)
    root.set("role", "img")
    root.set("aria-label", label)
    for size in ("width", "height"):
        root.attrib.pop(size, None)
    etree.cleanup_namespaces(root)
    return str(etree.tostring(root, encoding="unicode"))


_LOCAL_URL = re.compile(r"""url\(\s*(['"]?)#([^'")\s]+)\1\s*\)""")


def _prefix_ids(root: etree._Element, prefix: str) -> None:
    ids = {element.get("id") for element in root.iter() if element.get("id")}

    def url(match: re.Match[str]) -> str:
        name = match.group(2)
        return f"url(#{prefix}{name})" if name in ids else match.group(0)

    for element in root.iter():
        for attribute, value in element.attrib.items():
            local = attribute.rsplit("}", 1)[-1]
            if local == "id":
                element.set(attribute, prefix + value)
            elif local in ("aria-labelledby", "aria-describedby"):
                element.set(attribute, " ".join(prefix + n if n in ids else n for n in value.split()))
            elif local == "href" and value[1:] in ids:
                element.set(attribute, f"#{prefix}{value[1:]}")
            elif "url(" in value:
                element.set(attribute, _LOCAL_URL.sub(url, value))


def _remove(element: etree._Element) -> None:
    """Take ``element`` out, keeping the text that follows it (lxml's remove drops the tail)."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _unsafe_attribute(attribute: str, value: str) -> bool:
    """Event handlers, links that leave the document, styles or presentation attributes
    (fill, filter, marker-end …) that load things, foreign namespaces."""
    local = attribute.rsplit("}", 1)[-1]
    if local.lower().startswith("on"):
        return True
    if local == "href":
        return not value.startswith("#")
    if _UNSAFE_STYLE.search(value):
        return True
    return attribute.startswith("{") and not attribute.startswith(f"{{{XLINK_NS}}}")

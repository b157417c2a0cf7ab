"""A small HTML tree for the page tests: find elements by tag and attributes, read text.

Built on the standard library's parser (as a browser would read the page, not as text),
so a value that escaped its attribute or its element shows up as markup here.
"""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


@dataclasses.dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = dataclasses.field(default_factory=list)
    parent: Element | None = dataclasses.field(default=None, repr=False)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> list[Element]:
        out: list[Element] = []
        for c in self.children:
            if isinstance(c, Element):
                out.append(c)
                out += c.iter()
        return out

    def find_all(self, tag: str | None = None, cls: str | None = None,
                 **attrs: str | None) -> list[Element]:
        """Descendants with this tag, class and attributes (``data_task_id`` means
        ``data-task-id``; None: the attribute is present with any value)."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [e for e in self.iter()
                if (tag is None or e.tag == tag) and (cls is None or cls in e.classes())
                and all(k in e.attrs and (v is None or e.attrs[k] == v)
                        for k, v in wanted.items())]

    def find(self, tag: str | None = None, cls: str | None = None,
             **attrs: str | None) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'}> with class={cls} {attrs}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.at = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        e = Element(tag, {k: v or "" for k, v in attrs}, parent=self.at)
        self.at.children.append(e)
        if tag not in VOID:
            self.at = e

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.at.children.append(Element(tag, {k: v or "" for k, v in attrs}, parent=self.at))

    def handle_endtag(self, tag: str) -> None:
        e: Element | None = self.at
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.at = e.parent

    def handle_data(self, data: str) -> None:
        self.at.children.append(data)


def parse(html: str) -> Element:
    b = _Builder()
    b.feed(html)
    b.close()
    return b.root

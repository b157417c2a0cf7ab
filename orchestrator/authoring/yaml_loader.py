"""Reading a YAML DAG file safely: bounded before anything is built from it.

A file is parsed once, with libyaml's C parser where PyYAML has it, into a node graph
(aliases are shared nodes there, so nothing is expanded yet). That graph is checked
before any Python value is made from it: nesting depth, how many nodes aliases would
copy (a 1 KB "billion laughs" file names 10^9 of them), and aliases that contain
themselves. Duplicate mapping keys are an error instead of the last one silently
winning. Every problem is a :class:`~errors.DagError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from orchestrator import errors

MAX_DEPTH = 100
"""Deepest nesting a DAG file may have (libyaml itself stops at 1,000)."""

MAX_ALIAS_NODES = 100_000
"""Most nodes the aliases of one file may stand for, counted as if each were a copy."""

_MERGE = "tag:yaml.org,2002:merge"

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Checks:
    """What the loaders add to PyYAML's: a depth bound while composing (PyYAML's own
    composer recurses in Python; libyaml's is bounded in C and never calls this) and
    duplicate keys while constructing."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)  # type: ignore[misc,no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable: PyYAML's own check names it
                if duplicate:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc,no-any-return]


class Loader(_Checks, _Base):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader (the C one where available) with the checks above."""


class PureLoader(_Checks, yaml.SafeLoader):
    """The same checks on PyYAML's pure-Python loader, used where libyaml is missing."""


def read(path: Path, max_bytes: int) -> str:
    """The file's text, refused before it is read when it is bigger than ``max_bytes``."""
    source = str(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise errors.DagError(f"is {size} bytes, more than the limit of {max_bytes} "
                              "(ORCH_MAX_DAG_FILE_BYTES)", source=source)
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since stat
    if len(data) > max_bytes:
        raise errors.DagError(f"is more than the limit of {max_bytes} bytes "
                              "(ORCH_MAX_DAG_FILE_BYTES)", source=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.DagError(f"is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
                              f"{exc.start} cannot be decoded", source=source,
                              line=data.count(b"\n", 0, exc.start) + 1) from None


def parse(text: str, *, source: str, loader: type[yaml.SafeLoader] | None = None,
          ) -> tuple[Any, Node | None]:
    """The document's value and its root node (for line numbers), from one parse,
    checked before the value is built."""
    parser = (loader or Loader)(text)
    try:
        root = parser.get_single_node()
        if root is not None:
            check(root, source)
        data = parser.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise errors.DagError(f"invalid YAML: {problem}", source=source,
                              line=mark.line + 1 if mark else None) from None
    finally:
        parser.dispose()
    return data, root


def check(root: Node, source: str) -> None:
    """Depth, alias expansion and self-containing aliases, in one walk of the graph that
    visits each node once (iterative: a deep file must not exhaust Python's stack)."""
    size: dict[int, int] = {}  # node id -> nodes it stands for, aliases counted as copies
    open_: set[int] = {id(root)}  # nodes being walked: an alias to one of them is a loop
    aliased = 0
    stack: list[tuple[Node, list[Node], int]] = [(root, _children(root), 0)]
    while stack:
        node, kids, i = stack[-1]
        if i == len(kids):
            stack.pop()
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(k)] for k in kids)
            continue
        stack[-1] = (node, kids, i + 1)
        child = kids[i]
        if id(child) in size:  # seen before: an alias, which a value would copy
            aliased += size[id(child)]
            if aliased > MAX_ALIAS_NODES:
                raise errors.DagError(f"aliases expand to more than {MAX_ALIAS_NODES} nodes",
                                      source=source, line=node.start_mark.line + 1)
        elif id(child) in open_:
            raise errors.DagError("an alias refers to a node that contains it",
                                  source=source, line=child.start_mark.line + 1)
        elif len(stack) >= MAX_DEPTH:
            raise errors.DagError(f"nested deeper than {MAX_DEPTH} levels",
                                  source=source, line=child.start_mark.line + 1)
        else:
            open_.add(id(child))
            stack.append((child, _children(child), 0))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []

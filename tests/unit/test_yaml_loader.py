"""yaml_loader: bounds checked on the node graph before any value is built, duplicate
keys refused, one parse per file with libyaml where PyYAML has it; errors name the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import errors
from orchestrator.authoring import yaml_dags, yaml_loader

LOADERS = [pytest.param(yaml_loader.Loader, id="default"),
           pytest.param(yaml_loader.PureLoader, id="pure-python")]


def laughs(levels: int = 9) -> str:
    """The "billion laughs" file: each level refers to the one below nine times."""
    lines = ["id: laughs", "tasks: [{id: a, shell: echo}]", "params:",
             '  p0: {default: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]}']
    lines += [f"  p{i}: {{default: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]}}"
              for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def parse_error(text: str, loader: type[yaml.SafeLoader]) -> errors.DagError:
    with pytest.raises(errors.DagError) as info:
        yaml_loader.parse(text, source="f.yaml", loader=loader)
    return info.value


def test_the_c_loader_is_used_where_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(yaml_loader.Loader, yaml.CSafeLoader)


@pytest.mark.parametrize("loader", LOADERS)
def test_billion_laughs_fails_before_anything_is_expanded(loader: Any) -> None:
    text = laughs()
    assert len(text) < 1024
    exc = parse_error(text, loader)
    assert str(exc).startswith(
        f"f.yaml:{exc.line}: aliases expand to more than {yaml_loader.MAX_ALIAS_NODES} nodes")
    # the line is where the expansion crosses the cap, one of the alias levels
    assert exc.line is not None and 4 < exc.line <= text.count("\n")


@pytest.mark.parametrize("loader", LOADERS)
def test_aliases_within_the_cap_load(loader: Any) -> None:
    data, _ = yaml_loader.parse(laughs(levels=3), source="f.yaml", loader=loader)
    assert data["params"]["p2"]["default"][0][0] == ["lol"] * 8  # 9 x 9 x 8 values in all


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("text", [
    "a: " + "[" * 10_000 + "]" * 10_000 + "\n",            # flow, 10,000 deep
    "a: " + "[" * 150 + "]" * 150 + "\n",                  # deeper than the cap, below libyaml's
    "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),  # block style
])
def test_deep_nesting_is_an_error_with_its_line(loader: Any, text: str) -> None:
    exc = parse_error(text, loader)
    assert exc.line is not None
    assert "nest" in str(exc)  # "nested deeper than 100 levels", or libyaml's own limit


@pytest.mark.parametrize("loader", LOADERS)
def test_nesting_at_the_cap_loads(loader: Any) -> None:
    lists = yaml_loader.MAX_DEPTH - 1  # the root mapping is the first level
    data, _ = yaml_loader.parse("a: " + "[" * lists + "]" * lists + "\n", source="f.yaml",
                                loader=loader)
    expected: list[Any] = []
    for _ in range(lists - 1):
        expected = [expected]
    assert data == {"a": expected}
    exc = parse_error("a: " + "[" * (lists + 1) + "]" * (lists + 1) + "\n", loader)
    assert str(exc).endswith(f"nested deeper than {yaml_loader.MAX_DEPTH} levels")


@pytest.mark.parametrize("loader", LOADERS)
def test_an_alias_inside_its_own_anchor_is_an_error(loader: Any) -> None:
    exc = parse_error("id: x\nloop: &a [1, [2, *a]]\n", loader)
    assert str(exc) == "f.yaml:2: an alias refers to a node that contains it"


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("text", "line", "key"), [
    ("id: x\ntasks: []\nid: y\n", 3, "'id'"),
    ("id: x\ntasks:\n  - {id: a, shell: echo, id: b}\n", 3, "'id'"),
    ("p:\n  1: a\n  0x1: b\n", 3, "1"),  # the same key written two ways
])
def test_duplicate_keys_are_an_error_with_their_line(loader: Any, text: str, line: int,
                                                     key: str) -> None:
    exc = parse_error(text, loader)
    assert str(exc) == f"f.yaml:{line}: invalid YAML: duplicate key {key}"


@pytest.mark.parametrize("loader", LOADERS)
def test_a_merge_key_may_be_overridden(loader: Any) -> None:
    data, _ = yaml_loader.parse("d: &d {retries: 1, queue: q}\nt: {<<: *d, retries: 2}\n",
                                source="f.yaml", loader=loader)
    assert data["t"] == {"retries": 2, "queue": "q"}


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB by its size, nothing written
    with pytest.raises(errors.DagError) as info:
        yaml_dags.load_file(big, max_bytes=4 * 1024 * 1024)
    # the message stat gives; reading first would have said "is more than the limit"
    assert str(info.value) == (f"{big}: is {50 * 1024 * 1024} bytes, more than the limit of "
                               f"{4 * 1024 * 1024} (ORCH_MAX_DAG_FILE_BYTES)")


def test_a_file_at_the_size_cap_loads(tmp_path: Path) -> None:
    text = "id: x\ntasks: [{id: a, shell: echo}]\n"
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    assert yaml_dags.load_file(path, max_bytes=len(text)).id == "x"
    with pytest.raises(errors.DagError, match="more than the limit of"):
        yaml_dags.load_file(path, max_bytes=len(text) - 1)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    raw = "id: x\ntasks:\n  - {id: a, shell: echo café}\n".encode("latin-1")
    path.write_bytes(raw)
    with pytest.raises(errors.DagError) as info:
        yaml_dags.load_file(path)
    assert str(info.value) == (f"{path}:3: is not UTF-8 text: byte 0xe9 at offset "
                               f"{raw.index(0xE9)} cannot be decoded")


def test_each_file_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[str] = []

    class Counting(yaml_loader.Loader):  # type: ignore[misc]
        def get_single_node(self) -> Any:
            parses.append("node")
            return super().get_single_node()

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a second parse")

    monkeypatch.setattr(yaml_loader, "Loader", Counting)
    for name in ("safe_load", "load", "compose", "compose_all", "parse", "scan"):
        monkeypatch.setattr(yaml, name, refuse)
    path = tmp_path / "dag.yaml"
    path.write_text("id: x\ntasks:\n  - {id: a, shell: echo}\n  - {id: b, shell: echo}\n",
                    encoding="utf-8")
    s = yaml_dags.load_file(path)
    assert parses == ["node"]
    assert [t.line for t in s.tasks] == [3, 4]  # lines come from the same parse

"""Reading a params file strictly: what the stages, the flow and the doctor all use.

PyYAML silently keeps the last of two equal keys (a second ``epochs: 50`` under ``train:`` wins),
while DVC's own reader (ruamel) refuses the file, so the stages and DVC would disagree about what
ran. Aliases (``*name``) and merge keys (``<<:``) hide a value behind another line. All of these,
and a top level that is not a mapping of sections, are refused with one line naming the key and
its line.
"""

from __future__ import annotations

from typing import Any

import yaml

from tasks.errors import ParamsError


def _check(node: yaml.Node, where: str, line: int, seen: set[int]) -> None:
    """Refuse duplicate keys, merge keys and aliases under ``node``, the value of ``where`` written at ``line``.

    An alias is the anchored node itself, met a second time (``seen`` holds the nodes met so far).
    """
    if id(node) in seen:
        raise ParamsError(f"line {line}: {where}: an alias (*name) repeats a value written elsewhere; write it out")
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            at = line if id(item) in seen else item.start_mark.line + 1  # an alias marks its anchor's line
            _check(item, f"{where}[{i}]", at, seen)
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key, line = key_node.value, key_node.start_mark.line + 1
        name = f"{where}.{key}" if where else str(key)
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise ParamsError(f"line {line}: {name}: a merge key (<<) hides which values apply; write the keys out")
        if key in first:
            raise ParamsError(f"line {line}: {name}: duplicate key (first at line {first[key]}); keep one of them")
        first[key] = line
        _check(value_node, name, line, seen)


def read(text: str, name: str) -> dict[str, Any]:
    """The parsed mapping of the params file ``name`` holding ``text``; :class:`ParamsError` says what and where."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{name}: not valid YAML: {' '.join(str(exc).split())}") from None
    if node is None:
        raise ParamsError(
            f"{name}: empty; it must hold the pipeline's sections (restore it: git checkout {name}, "
            "or cp configs/kaggle.yaml for the real configuration)"
        )
    if not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1
        raise ParamsError(f"{name}: line {line}: the top level must be a mapping of sections (data:, train:, ...)")
    try:
        _check(node, "", 1, set())
    except ParamsError as exc:
        raise ParamsError(f"{name}: {exc}") from None
    return yaml.safe_load(text)

"""A study file's YAML as regbench reads it: keys as written, each key once, no aliases, and PyYAML's errors in
the words of the mistakes people make."""

from __future__ import annotations

from typing import Any

import yaml

from regbench.config.schema import show_value
from regbench.errors import ConfigError


class _StudyLoader(yaml.SafeLoader):
    """YAML as a study file means it: every mapping key as written (``on``, ``off``, ``1.0`` name variants, not
    YAML 1.1's True, False and 1.0), and a key twice in one mapping an error (YAML's own rule is that the last
    wins, silently)."""

    def compose_node(self, parent, index):
        # An alias (*name) lets a few lines expand to gigabytes (a "billion laughs" file); studies need none.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not supported in a study file; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep)
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else self.construct_object(key_node, deep)
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise yaml.constructor.ConstructorError(
                    None, None, "expected a name or number as a key, got a list or mapping", key_node.start_mark
                )
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} again (first on line {lines[key]}); each key once", key_node.start_mark
                )
            lines[key] = key_node.start_mark.line + 1
            mapping[key] = self.construct_object(value_node, deep)
        return mapping


_StudyLoader.add_constructor("tag:yaml.org,2002:map", _StudyLoader.construct_yaml_map)


def parse_study(text: str, source: str) -> dict[str, Any]:
    """The YAML document as a mapping; a syntax error or a non-mapping is a ConfigError with its line."""
    try:
        raw = yaml.load(text, Loader=_StudyLoader)
    except RecursionError:
        raise ConfigError([f"{source}: invalid YAML: nested too deeply for a study file"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError([f"{where}: invalid YAML: {yaml_problem(exc)}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}:1: config: expected a mapping of sections, got {show_value(raw)}"])
    return raw


# PyYAML's messages for the mistakes people make, as they would say them.
YAML_PROBLEMS = (
    ("expected <block end>", "this line's indentation does not match the lines above it (count its spaces)"),
    ("mapping values are not allowed here", "a ':' where a value was expected (a value with ': ' in it needs quotes)"),
    ("found character '\\t'", "a tab: YAML indents with spaces only"),
    ("found undefined alias", "a '*' starts an alias in YAML: quote the value"),
    ("could not find expected ':'", "a key without ':' after it, or a multi-line value that needs quotes"),
    ("found unexpected end of stream", "a quote or bracket that is never closed"),
    ("did not find expected node content", "a value that YAML cannot read (quote it)"),
    ("found unexpected ':'", "a ':' inside a value: quote the value"),
)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML syntax error in plain words (PyYAML's own words when they are not one of the usual mistakes)."""
    problem = str(getattr(exc, "problem", None) or exc)
    for pyyaml, plain in YAML_PROBLEMS:
        if problem.startswith(pyyaml):
            return plain
    return problem

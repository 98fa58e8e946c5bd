"""Error text for study files: the YAML line of each key, pydantic's errors as
``FILE:LINE: dotted.key: expected ..., got ...``, and which dotted keys exist."""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from regbench.config.schema import SCHEDULE_KINDS, VariantConfig, show_value
from regbench.errors import ConfigError


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted path in a YAML document to the 1-based line of its key (or list item)."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _expected(err: dict[str, Any]) -> str:
    """Turn one pydantic error into the 'expected ...' half of our message."""
    kind, ctx, msg = err["type"], err.get("ctx") or {}, err["msg"]
    bounds = {
        "greater_than": "a number > {gt}",
        "greater_than_equal": "a number >= {ge}",
        "less_than": "a number < {lt}",
        "less_than_equal": "a number <= {le}",
    }
    if kind in bounds:
        return "expected " + bounds[kind].format(**ctx)
    simple = {
        "float_type": "a number",
        "float_parsing": "a number",
        "int_type": "a whole number",
        "int_parsing": "a whole number",
        "int_from_float": "a whole number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "missing": "a value (this key is required)",
        "string_pattern_mismatch": "letters, digits, '_', '.' or '-'",
        "finite_number": "a finite number",
        "union_tag_invalid": "a schedule kind: constant, step, exponential or cosine",
        "union_tag_not_found": "a mapping with a kind: constant, step, exponential or cosine",
    }
    if kind in simple:
        return "expected " + simple[kind]
    if kind == "literal_error":
        return "expected one of " + ctx.get("expected", "")
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters (it names a folder)"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length', 1)} item(s)"
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against `regbench schema` or the README's config reference"
    if kind == "value_error":
        text = str(ctx.get("error", msg))
        return text if text.startswith("expected") else "expected " + text
    return "expected " + msg[0].lower() + msg[1:]


def unknown_key(key: str, allowed: list[str], what: str = "key") -> str:
    """'unknown key' with the close names first ('did you mean ...?'), or every allowed one."""
    close = difflib.get_close_matches(key, allowed, n=3)
    if close:
        return f"unknown {what}; did you mean {' or '.join(close)}?"
    return f"unknown {what}; expected one of: {', '.join(allowed)}" if allowed else f"unknown {what}"


def submodel(model: type[BaseModel], path: tuple[str, ...]) -> type[BaseModel] | None:
    """The pydantic model found by walking ``path`` down from ``model`` (None if it leads elsewhere)."""
    for part in path:
        if part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        found = [
            a
            for a in getattr(annotation, "__args__", (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not found:
            return None
        model = found[0]
    return model


def error_lines(exc: ValidationError, root: type[BaseModel]) -> list[tuple[tuple[str, ...], str, str]]:
    """(location, 'expected ...', ', got ...') for each pydantic error, one per key."""
    out = []
    for err in exc.errors(include_url=False):
        # Drop union-branch markers such as 'EarlyStoppingConfig' or 'list[int]' from the location.
        loc = tuple(str(p) for p in err["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p)))
        if "lr_schedule" in loc[:-1] and loc[loc.index("lr_schedule") + 1] in SCHEDULE_KINDS:  # the union's tag
            i = loc.index("lr_schedule") + 1
            loc = loc[:i] + loc[i + 1 :]
        got = "" if err["type"] == "missing" else f", got {show_value(err.get('input'))}"
        text = _expected(err)
        if not loc and err["type"] == "value_error":  # cross-field checks name their key: "a.b: expected ..."
            key, _, rest = str(err["ctx"]["error"]).partition(": ")
            loc, text, got = tuple(key.split(".")), rest, ""
        elif err["type"] == "extra_forbidden":
            parent = submodel(root, loc[:-1])
            text, got = unknown_key(loc[-1], list(parent.model_fields) if parent else []), ""
        elif loc[-1:] == ("early_stopping",) and err.get("input") is True:
            text = "expected a mapping of EarlyStopping arguments ({} for their defaults) or null"
        if any(loc == seen for seen, _, _ in out):
            continue
        out.append((loc, text, got))
    return out


def _line_number(message: str) -> int:
    """Sort key: a problem's line in the file (--set problems first)."""
    match = re.match(r"[^\n]*?:(\d+): ", message)
    return int(match.group(1)) if match and not message.startswith("--set") else 0


def line_of(lines: dict[tuple[str, ...], int], path: tuple[str, ...], floor: int = 0) -> int | None:
    """Line of the longest prefix of ``path`` (at least ``floor + 1`` parts long) that the file spells out."""
    while len(path) > floor:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


class Problems:
    """Every problem found in one file, each located: ``FILE:LINE: key: ...``, or ``--set key: ...`` when an
    override set the value."""

    def __init__(self, text: str, source: str, overridden: set[tuple[str, ...]]):
        self.lines, self.source, self.overridden = _line_map(text), source, overridden
        self.found: list[str] = []

    def line(self, path: tuple[str, ...], floor: int = 0) -> int:
        return line_of(self.lines, path, floor) or 1

    def set_by_override(self, path: tuple[str, ...]) -> bool:
        return any(path[: len(o)] == o for o in self.overridden)

    def at(self, path: tuple[str, ...], text: str, got: str = "", floor: int = 0) -> None:
        if self.set_by_override(path):
            found = f"--set {'.'.join(path)}: {text}{got}"
        else:
            found = f"{self.source}:{self.line(path, floor)}: {'.'.join(path)}: {text}{got}"
        if found not in self.found:
            self.found.append(found)

    def add(self, line: int, message: str) -> None:
        text = f"{self.source}:{line}: {message}"
        if text not in self.found:
            self.found.append(text)

    def raise_any(self) -> None:
        if self.found:
            raise ConfigError(sorted(self.found, key=_line_number))


def dotted_keys(model: type[BaseModel] = VariantConfig, prefix: str = "") -> list[str]:
    """Every dotted key under ``model`` (train.epochs, regularization.early_stopping.patience, ...)."""
    keys = []
    for name in model.model_fields:
        inner = submodel(model, (name,))
        keys += dotted_keys(inner, f"{prefix}{name}.") if inner is not None else [prefix + name]
    return keys


def unknown_dotted_key(key: str) -> str:
    """'unknown key' for a dotted key of a variant, with the close ones ('did you mean ...?') when there are."""
    keys = dotted_keys()
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.75)
    if not close:  # a misspelt last part (regularization.droput), or no section (dropout)
        parent, _, last = key.rpartition(".")
        siblings = [k for k in keys if k.rpartition(".")[0] == parent] or keys
        by_last = {k.rpartition(".")[2]: k for k in reversed(siblings)}
        close = [by_last[k] for k in difflib.get_close_matches(last, list(by_last), n=3)]
    if close:
        return f"unknown key; did you mean {' or '.join(close)}?"
    return "unknown key; expected a dotted config key such as train.epochs or regularization.l2"


def known_key(path: list[str]) -> bool:
    """True when a dotted path names a field of VariantConfig (early_stopping's fields included)."""
    parent = submodel(VariantConfig, tuple(path[:-1]))
    return bool(path) and parent is not None and path[-1] in parent.model_fields
